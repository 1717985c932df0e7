"""Model providers: any OpenAI-compatible endpoint, or the built-in offline provider; one per catalog model.

The worker's `Providers` makes a guarded provider for each model of the catalog (`models/catalog.py`) the
first time a call names it, and keeps it: the activities pick theirs by the model id their input carries.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from temporalio.exceptions import ApplicationError

from activities.providers.base import GeneratedBytes, Provider, ReferenceInput
from models.catalog import KINDS, Catalog, CatalogModel, ModelChoice, from_settings
from models.endpoints import Endpoint, Kind
from models.pricing import Unpriced, catalog_price
from models.settings import Settings
from models.usage import ModelRequest, Price

if TYPE_CHECKING:
    from activities.breaker import CircuitBreaker
    from activities.providers.call_log import CallLog
    from activities.providers.guarded import GuardedProvider
    from activities.providers.openai_provider import ClientPool

__all__ = ["GeneratedBytes", "Provider", "Providers", "ReferenceInput", "make_provider"]
QUEUE_KINDS: dict[Kind, str] = {"text": "text", "eval": "text", "image": "image"}  # the paid queue of each kind


def make_provider(settings: Settings) -> GuardedProvider:
    """The provider the settings select (`auto`: openai with a key, else offline), instrumented.

    Every call waits behind its rate-limit gate, goes through its circuit breaker and gets a span,
    metrics, priced usage and (unless turned off) a line in the call log.
    """
    provider: Provider
    if settings.resolved_provider == "openai":
        from activities.providers.openai_provider import OpenAIProvider

        provider = OpenAIProvider(settings)
    else:
        from activities.providers.offline import OfflineProvider

        provider = OfflineProvider(latency_s=settings.offline_latency_s)
    return _guarded(provider, settings, make_call_log(settings), settings.prices)


def make_call_log(settings: Settings) -> CallLog | None:
    from activities.providers.call_log import CallLog

    if not settings.call_log:
        return None
    return CallLog(settings.call_log_path, int(settings.call_log_max_mb * 2**20), settings.call_log_files)


def _guarded(
    provider: Provider,
    settings: Settings,
    log: CallLog | None,
    prices: dict[str, Price],
    model: CatalogModel | None = None,
    owns: tuple[str, ...] = ("text", "image"),
) -> GuardedProvider:
    """`provider` behind its own gates, breakers and limit learner (`model`: the catalog model it serves)."""
    from activities.breaker import Breakers
    from activities.learned_limits import LimitLearner
    from activities.providers.guarded import GuardedProvider
    from activities.rate_limits import Gates

    named = {model.provider_model: model.id} if model and model.provider_model != model.id else {}
    return GuardedProvider(
        provider,
        log,
        prices,
        Breakers.from_settings(settings),
        Gates(settings.text_rpm, settings.image_rpm),
        {kind: settings.deadline_s(kind) for kind in ("text", "image")},
        LimitLearner({kind: settings.rpm(kind) for kind in ("text", "image")}, owns, model.id if model else None),
        model_id=model.id if model else None,
        named=named,
    )


class Providers:
    """The worker's providers, one per catalog model, made the first time a call names it and kept. Each has its
    own rate-limit gates, breakers and learned limits (two models on one endpoint learn their own, and one's
    429s never hold back the other) and its prices (its entry's `price` over the table); the models on one
    server share its client."""

    def __init__(self, catalog: Catalog, settings: Settings, only: GuardedProvider | None = None) -> None:
        from activities.breaker import Breakers

        self.catalog = catalog
        self.settings = settings
        self.only = only
        breakers = getattr(only, "breakers", None) or Breakers.from_settings(settings)
        self.upload: CircuitBreaker = breakers.upload  # publishing: one breaker for the worker
        self._log = make_call_log(settings) if only is None else None
        self._clients: ClientPool | None = None
        self._made: dict[str, GuardedProvider] = {}

    @classmethod
    def serving(cls, provider: GuardedProvider, settings: Settings | None = None) -> Providers:
        """One provider for every call, whatever model a run names (a test's spy, a tool's provider)."""
        settings = settings or Settings()
        return cls(from_settings(settings), settings, only=provider)

    def get(self, kind: Kind, model_id: str | None) -> GuardedProvider:
        """The provider of the model a call of `kind` names (None: the catalog's default for the kind). A model
        this worker's catalog lacks, or one of another kind, fails the call for good, saying so."""
        if self.only is not None:
            return self.only
        try:
            model = self.catalog.resolve(kind, model_id)
        except ValueError as exc:
            raise ApplicationError(
                f"{exc} (this worker's catalog: {self.catalog.source})", type="UnknownModel", non_retryable=True
            ) from None
        if model.id not in self._made:
            self._made[model.id] = self._make(model)
        return self._made[model.id]

    def for_request(self, request: ModelRequest) -> GuardedProvider:
        """The provider of the model an activity's input names for its kind of call."""
        return self.get(request.MODEL_KIND, request.model)

    @property
    def name(self) -> str:
        """The default text model's provider (`openai`, `offline`), for the worker's start line."""
        return self.get("text", None).name

    def describe(self) -> str:
        """The catalog in a few words: its source and each kind's default."""
        if self.only is not None:
            return f"provider {self.only.name}"
        defaults = ", ".join(f"{kind} {self.catalog.default(kind).id}" for kind in KINDS)
        return f"{len(self.catalog.models)} models from {self.catalog.source} ({defaults})"

    def identity(self, default: str, choice: ModelChoice | None) -> str:
        """What names the models a run's calls go to (a cache key's part): `default`, the worker's, for a run
        that chose none; else the ids it chose on top of it."""
        chosen = {kind: value for kind in KINDS if choice is not None and (value := choice.of(kind))}
        return default if not chosen else default + "|" + ",".join(f"{k}={v}" for k, v in sorted(chosen.items()))

    def _make(self, model: CatalogModel) -> GuardedProvider:
        settings = self.settings
        prices = self._prices(model, self._driver(model))
        owns = tuple(queue for queue in ("text", "image") if self._serves_alone(model, queue))  # its limit is theirs
        provider: Provider
        if model.provider == "offline":
            from activities.providers.offline import OfflineProvider

            provider = OfflineProvider(latency_s=settings.offline_latency_s, model=model.provider_model)
        else:
            from activities.providers.openai_provider import ClientPool, OpenAIProvider

            self._clients = self._clients or ClientPool(settings)
            provider = OpenAIProvider(settings, self._endpoints(model), model.image_api, prices, self._clients)
        return _guarded(provider, settings, self._log, prices, model, owns)

    def _driver(self, model: CatalogModel) -> CatalogModel | None:
        """The model that drives an image model's Responses route when it writes no text itself: the default
        text model on an endpoint (as IMAGE_API=auto does with LLM_MODEL)."""
        writer = self.catalog.default("text")
        return writer if "text" not in model.kinds and writer.provider == "openai" else None

    def _endpoints(self, model: CatalogModel) -> dict[Kind, Endpoint]:
        """Where a model's calls go: its own endpoint (text: its driver's, when it has one)."""
        endpoints = {kind: self.catalog.endpoint(model, kind) for kind in KINDS}
        if (driver := self._driver(model)) is not None:
            endpoints["text"] = self.catalog.endpoint(driver, "text")
        return endpoints

    def _prices(self, *models: CatalogModel | None) -> dict[str, Price]:
        """The price table with these models' catalog prices on top (a model with none is billed as its endpoint
        reports, else unpriced: no budget may use it)."""
        prices = dict(self.settings.prices)
        for model in filter(None, models):
            with contextlib.suppress(Unpriced):
                prices[model.provider_model] = catalog_price(model, self.settings.prices)
        return prices

    def _serves_alone(self, model: CatalogModel, queue: str) -> bool:
        """Whether `model` is the only catalog model whose calls run on `queue`'s paid queue."""
        on_queue = [m.id for m in self.catalog.models if any(QUEUE_KINDS[kind] == queue for kind in m.kinds)]
        return on_queue == [model.id]

"""The models a run may ask for, named by the operator: `ATELIER_MODELS_FILE` (TOML, `[[models]]` tables), else
`models.toml` in the working directory when present, else today's settings as one model per kind (and, with no
key, the three offline models). A run names models by catalog id (`ModelChoice`); None means the kind's default.

Pure data: the API validates a run's choice with it, the workers build one provider per model from it."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError, field_validator

from models.endpoints import Endpoint, Kind, check_base_url, provider_label
from models.usage import Price

if TYPE_CHECKING:
    from models.settings import Settings

KINDS: tuple[Kind, ...] = get_args(Kind)
ModelId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}$")]
# the offline provider's models: the same writer and painter with a visibly different hand
OFFLINE_MODELS: tuple[str, ...] = ("offline", "offline-vivid", "offline-sketch")
DEFAULT_FILE = Path("models.toml")


class CatalogError(ValueError):
    """A catalog that cannot serve: one line naming the entry."""


class ModelChoice(BaseModel):
    """The models a run asks for, by catalog id, per kind of call; None: the catalog's default for that kind."""

    model_config = ConfigDict(extra="forbid")

    text: ModelId | None = None
    image: ModelId | None = None
    eval: ModelId | None = None

    def of(self, kind: Kind) -> str | None:
        return getattr(self, kind)


class CatalogModel(BaseModel):
    """One `[[models]]` entry."""

    model_config = ConfigDict(extra="forbid")

    id: ModelId  # what a run asks for
    kinds: list[Kind] = Field(min_length=1)
    provider: Literal["openai", "offline"] = "openai"  # "openai": any OpenAI-compatible endpoint
    base_url: str | None = None  # None: OpenAI's
    api_key_env: str | None = None  # the NAME of the variable holding its key (never the key)
    model: str | None = None  # the provider's model name; None: `id`
    image_api: Literal["auto", "images", "responses", "chat"] = "auto"
    price: Price | None = None  # None: the price table's entry for `model`
    default: bool = False  # the default of each of its kinds

    @field_validator("base_url", mode="after")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return check_base_url(value)

    @property
    def provider_model(self) -> str:
        return self.model or self.id

    def describe(self) -> dict[str, object]:
        """As `GET /v1/models` lists it: OpenAI's model object plus Atelier's fields."""
        return {
            "id": self.id,
            "object": "model",
            "owned_by": "atelier" if self.provider == "offline" else provider_label(self.base_url),
            "kinds": list(self.kinds),
            "price": self.price.model_dump() if self.price else None,
            "default": [kind for kind in self.kinds if self.default],
        }


class Catalog(BaseModel):
    """Every model of the catalog, a default per kind, and (for catalogs made from settings) the endpoints."""

    models: list[CatalogModel]
    source: str  # the file it was read from, or "settings"
    # catalogs made from settings keep their keys here (they may come from `.env`, not the environment)
    keys: dict[str, SecretStr] = Field(default_factory=dict, exclude=True)

    def get(self, model_id: str) -> CatalogModel | None:
        return next((m for m in self.models if m.id == model_id), None)

    def default(self, kind: Kind) -> CatalogModel:
        return next(m for m in self.models if kind in m.kinds and m.default)

    def of_kind(self, kind: Kind) -> list[CatalogModel]:
        return [m for m in self.models if kind in m.kinds]

    def resolve(self, kind: Kind, model_id: str | None) -> CatalogModel:
        """The model a call of `kind` uses: the one asked for, else the default (ValueError naming the id)."""
        if model_id is None:
            return self.default(kind)
        found = self.get(model_id)
        if found is None:
            raise ValueError(f"unknown model {model_id!r}: the catalog has {', '.join(m.id for m in self.models)}")
        if kind not in found.kinds:
            raise ValueError(f"model {model_id!r} does not do {kind} (its kinds: {', '.join(found.kinds)})")
        return found

    def problem(self, choice: ModelChoice) -> tuple[str, str] | None:
        """What is wrong with a run's choice, as (field, message) with the field under `models`; None: fine."""
        for kind in KINDS:
            try:
                self.resolve(kind, choice.of(kind))
            except ValueError as exc:
                return f"models.{kind}", str(exc)
        return None

    def endpoint(self, model: CatalogModel, kind: Kind, environ: Mapping[str, str] | None = None) -> Endpoint:
        """Where calls of `kind` to `model` go, with its key (from the catalog's own keys, else the environment)."""
        environ = os.environ if environ is None else environ
        key = self.keys.get(model.id)
        if key is None and model.api_key_env and environ.get(model.api_key_env):
            key = SecretStr(environ[model.api_key_env])
        return Endpoint(kind, model.base_url, key, model.provider_model, "base_url", model.api_key_env or "api_key_env")

    def check_keys(self, environ: Mapping[str, str] | None = None) -> None:
        """A worker's start: every key variable the catalog names is set (CatalogError naming the entry)."""
        environ = os.environ if environ is None else environ
        for model in self.models:
            if model.api_key_env and model.id not in self.keys and not environ.get(model.api_key_env):
                raise CatalogError(
                    f"{self.source}: model {model.id!r} names api_key_env {model.api_key_env!r}, which is not set"
                )


def _checked(models: list[CatalogModel], source: str, keys: dict[str, SecretStr] | None = None) -> Catalog:
    seen: set[str] = set()
    for model in models:
        if model.id in seen:
            raise CatalogError(f"{source}: model {model.id!r} is listed twice")
        seen.add(model.id)
    for kind in KINDS:
        defaults = [m.id for m in models if kind in m.kinds and m.default]
        if not defaults:
            raise CatalogError(f"{source}: no model is `default = true` for {kind}")
        if len(defaults) > 1:
            raise CatalogError(f"{source}: {kind} has more than one default ({', '.join(defaults)})")
    return Catalog(models=models, source=source, keys=keys or {})


def read_catalog(path: Path) -> Catalog:
    """A catalog file (CatalogError with one line naming the file and the entry)."""
    try:
        tables = tomllib.loads(path.read_text()).get("models")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{path}: {exc}") from None
    if not isinstance(tables, list) or not tables:
        raise CatalogError(f"{path}: no [[models]] tables")
    models: list[CatalogModel] = []
    for number, table in enumerate(tables, 1):
        name = table.get("id", f"#{number}") if isinstance(table, dict) else f"#{number}"
        try:
            models.append(CatalogModel.model_validate(table))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(map(str, first["loc"])) or "entry"
            raise CatalogError(f"{path}: model {name!r}: {field}: {first['msg']}") from None
    return _checked(models, str(path))


def from_settings(settings: Settings) -> Catalog:
    """Today's settings as a catalog: the three offline models with no key, else one model per kind from
    LLM_*, IMAGE_* and EVAL_* (a model on two endpoints under one name gets its kind as a prefix; with
    IMAGE_API=offline, the built-in pictures as `offline`)."""
    if settings.resolved_provider == "offline":
        return _checked(
            [
                CatalogModel(id=name, kinds=list(KINDS), provider="offline", default=name == "offline")
                for name in OFFLINE_MODELS
            ],
            "settings",
        )
    models: dict[str, CatalogModel] = {}
    keys: dict[str, SecretStr] = {}
    endpoints: dict[str, Endpoint] = {}
    for kind in KINDS:
        if kind == "image" and settings.image_api == "offline":  # a text-only endpoint: the built-in pictures
            models["offline"] = CatalogModel(id="offline", kinds=["image"], provider="offline", default=True)
            continue
        endpoint = settings.endpoint(kind)
        name = endpoint.model
        if name in models and not endpoints[name].same_server(endpoint):
            name = f"{kind}:{endpoint.model}"
        if name in models:
            models[name].kinds.append(kind)
            continue
        models[name] = CatalogModel(
            id=name,
            kinds=[kind],
            base_url=endpoint.base_url,
            model=endpoint.model,
            image_api=settings.image_api if settings.image_api != "offline" else "auto",
            price=settings.prices.get(endpoint.model),
            default=True,
            api_key_env=endpoint.key_setting if endpoint.api_key else None,
        )
        endpoints[name] = endpoint
        if endpoint.api_key:
            keys[name] = endpoint.api_key
    return _checked(list(models.values()), "settings", keys)


def load_catalog(settings: Settings) -> Catalog:
    """The catalog in use: ATELIER_MODELS_FILE, else ./models.toml when present, else the settings'."""
    path = settings.models_file or (DEFAULT_FILE if DEFAULT_FILE.is_file() else None)
    return read_catalog(path) if path is not None else from_settings(settings)


__all__ = [
    "KINDS",
    "OFFLINE_MODELS",
    "Catalog",
    "CatalogError",
    "CatalogModel",
    "ModelChoice",
    "ModelId",
    "from_settings",
    "load_catalog",
    "read_catalog",
]

"""Model providers: any OpenAI-compatible endpoint, or the built-in offline provider."""

from __future__ import annotations

from typing import TYPE_CHECKING

from activities.providers.base import GeneratedBytes, Provider, ReferenceInput
from models.settings import Settings

if TYPE_CHECKING:
    from activities.providers.guarded import GuardedProvider

__all__ = ["GeneratedBytes", "Provider", "ReferenceInput", "make_provider"]


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
    from activities.breaker import Breakers
    from activities.learned_limits import LimitLearner
    from activities.providers.call_log import CallLog
    from activities.providers.guarded import GuardedProvider
    from activities.rate_limits import Gates

    log = CallLog(settings.call_log_path, int(settings.call_log_max_mb * 2**20), settings.call_log_files)
    return GuardedProvider(
        provider,
        log if settings.call_log else None,
        settings.prices,
        Breakers.from_settings(settings),
        Gates(settings.text_rpm, settings.image_rpm),
        {kind: settings.deadline_s(kind) for kind in ("text", "image")},
        LimitLearner({kind: settings.rpm(kind) for kind in ("text", "image")}),
    )

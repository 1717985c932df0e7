"""Model providers: any OpenAI-compatible endpoint, or the built-in offline provider."""

from __future__ import annotations

from activities.providers.base import GeneratedBytes, Provider, ReferenceInput
from models.settings import Settings

__all__ = ["GeneratedBytes", "Provider", "ReferenceInput", "make_provider"]


def make_provider(settings: Settings) -> Provider:
    """The provider the settings select (`auto`: openai with a key, else offline)."""
    if settings.resolved_provider == "openai":
        from activities.providers.openai_provider import OpenAIProvider

        return OpenAIProvider(settings)
    from activities.providers.offline import OfflineProvider

    return OfflineProvider()

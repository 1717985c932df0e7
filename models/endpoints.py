"""Where each kind of model call goes: text, pictures and vision evaluation may each use their own
OpenAI-compatible endpoint (base URL, key, model); an unset one falls back to the text endpoint's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

Kind = Literal["text", "image", "eval"]
PREFIX: dict[str, str] = {"text": "LLM", "image": "IMAGE", "eval": "EVAL"}
OPENAI_URL = "https://api.openai.com/v1"


def check_base_url(value: str | None) -> str | None:
    """An http(s) URL with a host, or None; anything else is a configuration error."""
    if value is None or not value.strip():
        return None
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host (got {value!r})")
    return value.strip()


def provider_label(base_url: str | None) -> str:
    """How results and logs name an endpoint: `openai`, `openrouter`, `ollama`, else its host:port."""
    parts = urlsplit(base_url or OPENAI_URL)
    host = (parts.hostname or "").lower()
    if host == "api.openai.com":
        return "openai"
    if host.endswith("openrouter.ai"):
        return "openrouter"
    if parts.port == 11434:
        return "ollama"
    return parts.netloc.lower()


@dataclass(frozen=True)
class Endpoint:
    kind: Kind
    base_url: str | None  # None: OpenAI's
    api_key: SecretStr | None
    model: str
    url_setting: str  # the variable the base URL came from, for messages (LLM_BASE_URL, IMAGE_BASE_URL, …)
    key_setting: str

    @property
    def label(self) -> str:
        return provider_label(self.base_url)

    @property
    def url(self) -> str:
        return (self.base_url or OPENAI_URL).rstrip("/")

    def same_server(self, other: Endpoint) -> bool:
        """Same base URL and key: one client serves both."""
        return self.url == other.url and self.api_key == other.api_key

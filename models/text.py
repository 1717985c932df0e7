"""Rules for text that enters the pipelines: prompts from users, content from models."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

MODEL_TEXT_LIMIT = 8000


def _clean_prompt(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    bad = next((ch for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t"), None)
    if bad is not None:
        raise ValueError(f"contains a control character (U+{ord(bad):04X})")
    return text


Prompt = Annotated[str, AfterValidator(_clean_prompt)]


def shorten(text: str, limit: int) -> str:
    """One line of at most `limit` characters, whitespace folded, an ellipsis where it was cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ModelOutput(BaseModel):
    """What a language model returns: exactly the schema's fields, no enormous strings."""

    model_config = ConfigDict(extra="forbid", str_max_length=MODEL_TEXT_LIMIT)

"""Offline text: prompt refinement from feedback, and schema-valid structured content."""

from __future__ import annotations

import hashlib
import re
import types
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel

from activities.providers.offline.vocabulary import STOPWORDS, words
from models.image import RefinedPrompt, RefinePromptRequest

# feedback pattern -> phrases that fix it, strongest last; each refinement takes the next one.
FIXES: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(r"Contrast is low"), ("high contrast", "dramatic lighting", "strong shadows", "chiaroscuro")),
    (
        re.compile(r"Few fine details"),
        ("intricate detail", "sharp texture", "crisp fine detail", "highly detailed"),
    ),
    (re.compile(r"Colours are dull"), ("vivid colours", "saturated", "vibrant", "rich colours")),
    (re.compile(r"should be transparent"), ("isolated on a transparent background",)),
]
MORE_COLOUR = re.compile(r"More (\w+) is needed")
MAX_PROMPT = 1200


def _next_phrase(prompt: str, phrases: tuple[str, ...]) -> str | None:
    lowered = prompt.lower()
    return next((p for p in phrases if p not in lowered), None)


def refine(request: RefinePromptRequest) -> RefinedPrompt:
    """Add what the latest feedback asks for; human feedback is followed verbatim."""
    current = request.current_prompt.rstrip(" .")
    latest = request.feedback[-1] if request.feedback else ""
    additions = [f"more {colour}" for colour in MORE_COLOUR.findall(latest)]
    for pattern, phrases in FIXES:
        if pattern.search(latest) and (phrase := _next_phrase(current, phrases)):
            additions.append(phrase)
    additions += [text.strip().rstrip(".") for text in request.human_feedback if text.strip()]
    if not additions:
        additions = [_next_phrase(current, ("sharp focus on the main subject", "balanced composition")) or "polished"]
    prompt = f"{current}, {', '.join(dict.fromkeys(additions))}"
    return RefinedPrompt(prompt=prompt[:MAX_PROMPT])


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def keywords(prompt: str) -> list[str]:
    found = [w for w in words(prompt) if w not in STOPWORDS and len(w) > 2]
    return list(dict.fromkeys(found)) or ["atelier"]


class SchemaFiller:
    """Builds a deterministic instance of any pydantic model from a prompt."""

    def __init__(self, prompt: str) -> None:
        self.prompt = prompt
        self.words = keywords(prompt)

    def build(self, schema: type[BaseModel], path: str = "") -> BaseModel:
        values = {}
        for name, info in schema.model_fields.items():
            values[name] = self.value(info.annotation, info.metadata, f"{path}.{name}")
        return schema.model_validate(values)

    def value(self, annotation: Any, metadata: list[Any], path: str) -> Any:
        origin, args = get_origin(annotation), get_args(annotation)
        bounds = {type(m): m for m in metadata}
        pick = _digest(self.prompt, path)
        if origin in (Union, types.UnionType):
            choice = next(a for a in args if a is not type(None))
            return self.value(choice, metadata, path)
        if origin is Literal:
            return args[pick % len(args)]
        if origin in (list, tuple, set):
            low = bounds[MinLen].min_length if MinLen in bounds else 1
            high = bounds[MaxLen].max_length if MaxLen in bounds else max(low, 3)
            count = min(high, max(low, 2 + pick % 2))
            return [self.value(args[0] if args else str, [], f"{path}[{i}]") for i in range(count)]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.build(annotation, path)
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            members = list(annotation)
            return members[pick % len(members)]
        if annotation is bool:
            return bool(pick % 2)
        if annotation in (int, float):
            low = bounds[Ge].ge if Ge in bounds else bounds[Gt].gt + 1 if Gt in bounds else 0
            high = bounds[Le].le if Le in bounds else bounds[Lt].lt - 1 if Lt in bounds else low + 100
            return annotation(low + pick % (int(high - low) + 1))
        return self.text(path, bounds)

    def text(self, path: str, bounds: dict[type, Any]) -> str:
        field = path.rsplit(".", 1)[-1].split("[")[0].replace("_", " ")
        pick = _digest(self.prompt, path)
        chosen = [self.words[(pick >> (i * 4)) % len(self.words)] for i in range(3)]
        text = f"{field.capitalize()}: {' '.join(dict.fromkeys(chosen))}"
        limit = bounds[MaxLen].max_length if MaxLen in bounds else None
        minimum = bounds[MinLen].min_length if MinLen in bounds else 0
        text = text.ljust(minimum, ".")
        return text[:limit] if limit else text

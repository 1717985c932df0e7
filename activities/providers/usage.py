"""Token and image accounting for model calls.

Providers `note()` what each call used (the OpenAI SDK's reported usage; the offline provider's
estimate). The guarded provider (`guarded.py`) collects one call's notes, prices them, and adds them to the
running activity's usage, which the activity hands back with its result through `metered()`.
Everything stays inside the activity's own asyncio task (context variables), so concurrent
activities on one worker never mix their counts.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from models.usage import Metered, ModelUsage, Price, Usage, V


@dataclass
class Note:
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0


_call_notes: ContextVar[list[Note] | None] = ContextVar("atelier_call_notes", default=None)
_activity_usage: ContextVar[Usage | None] = ContextVar("atelier_activity_usage", default=None)


def note(model: str, input_tokens: int = 0, output_tokens: int = 0, images: int = 0) -> None:
    """Record what the current model call used (ignored outside an instrumented call)."""
    notes = _call_notes.get()
    if notes is not None:
        notes.append(Note(model, max(0, input_tokens), max(0, output_tokens), max(0, images)))


def estimate_tokens(*texts: str) -> int:
    """About four characters a token: the offline provider's deterministic estimate."""
    return sum((len(text) + 3) // 4 for text in texts)


def start_call() -> list[Note]:
    notes: list[Note] = []
    _call_notes.set(notes)
    return notes


def finish_call(notes: list[Note], prices: dict[str, Price]) -> Usage:
    """Price one call's notes, add them to the activity's usage, and return them."""
    _call_notes.set(None)
    rows: dict[str, ModelUsage] = {}
    for item in notes:
        price = prices.get(item.model)
        cost = price.cost(item.input_tokens, item.output_tokens, item.images) if price else None
        row = ModelUsage(
            calls=0 if rows else 1,  # the call counts once, under the first model it noted
            input_tokens=item.input_tokens,
            output_tokens=item.output_tokens,
            images=item.images,
            cost_usd=None if cost is None else round(cost, 6),
        )
        rows[item.model] = rows[item.model].plus(row) if item.model in rows else row
    call = Usage(models=rows)
    _activity_usage.set((_activity_usage.get() or Usage()).plus(call))
    return call


def metered(value: V) -> Metered[V]:
    """The activity's result with the usage its model calls noted (and a fresh count for what follows)."""
    usage = _activity_usage.get() or Usage()
    _activity_usage.set(None)
    return Metered(value=value, usage=usage)

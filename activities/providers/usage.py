"""Token and image accounting for model calls, passed explicitly.

The guarded provider (`guarded.py`) hands each call a fresh `CallNotes`; the provider notes in it what
the call used (the OpenAI SDK's reported usage; the offline provider's estimate). The guarded provider
prices the notes, and returns them with the call's result as `Metered`, which the activity passes on
to its workflow.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.usage import ModelUsage, Price, Usage


@dataclass
class Note:
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0


class CallNotes(list[Note]):
    """What one model call used, as the provider reported it."""

    def note(self, model: str, input_tokens: int = 0, output_tokens: int = 0, images: int = 0) -> None:
        self.append(Note(model, max(0, input_tokens), max(0, output_tokens), max(0, images)))


def note(notes: CallNotes | None, model: str, input_tokens: int = 0, output_tokens: int = 0, images: int = 0) -> None:
    """Note in `notes` what a call used; a provider called on its own (no notes) keeps no count."""
    if notes is not None:
        notes.note(model, input_tokens, output_tokens, images)


def estimate_tokens(*texts: str) -> int:
    """About four characters a token: the offline provider's deterministic estimate."""
    return sum((len(text) + 3) // 4 for text in texts)


def priced(notes: CallNotes, prices: dict[str, Price]) -> Usage:
    """One call's notes as usage, with its cost where the model has a price."""
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
    return Usage(models=rows)

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
    cost_usd: float | None = None  # the price the endpoint reported for the call (OpenRouter's usage.cost)
    new_call: bool = False  # another request made by the same call (a re-ask), counted as a call of its own


class CallNotes(list[Note]):
    """What one model call used, as the provider reported it."""

    def note(
        self,
        model: str,
        input_tokens: int = 0,
        output_tokens: int = 0,
        images: int = 0,
        cost_usd: float | None = None,
        new_call: bool = False,
    ) -> None:
        reported = cost_usd if cost_usd is not None and cost_usd >= 0 else None
        self.append(Note(model, max(0, input_tokens), max(0, output_tokens), max(0, images), reported, new_call))

    @property
    def cost_source(self) -> str:
        """`reported` when the endpoint priced every part of the call, else `table`."""
        return "reported" if self and all(n.cost_usd is not None for n in self) else "table"


def note(
    notes: CallNotes | None,
    model: str,
    input_tokens: int = 0,
    output_tokens: int = 0,
    images: int = 0,
    cost_usd: float | None = None,
    new_call: bool = False,
) -> None:
    """Note in `notes` what a call used; a provider called on its own (no notes) keeps no count."""
    if notes is not None:
        notes.note(model, input_tokens, output_tokens, images, cost_usd, new_call)


def estimate_tokens(*texts: str) -> int:
    """About four characters a token: the offline provider's deterministic estimate."""
    return sum((len(text) + 3) // 4 for text in texts)


def priced(notes: CallNotes, prices: dict[str, Price], named: dict[str, str] | None = None) -> Usage:
    """One call's notes as usage, with its cost: as the endpoint reported it, else from the price table
    (None where the table has no price for the model). `named`: a model's row under another name (a catalog
    model's provider name → its catalog id)."""
    rows: dict[str, ModelUsage] = {}
    for item in notes:
        price = prices.get(item.model)
        cost = item.cost_usd
        if cost is None and price is not None:
            cost = price.cost(item.input_tokens, item.output_tokens, item.images)
        row = ModelUsage(
            calls=1 if not rows or item.new_call else 0,  # a call counts once, under the first model it noted
            input_tokens=item.input_tokens,
            output_tokens=item.output_tokens,
            images=item.images,
            cost_usd=None if cost is None else round(cost, 6),
        )
        name = (named or {}).get(item.model, item.model)
        rows[name] = rows[name].plus(row) if name in rows else row
    return Usage(models=rows)

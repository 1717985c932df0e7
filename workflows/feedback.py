"""Human feedback waiting for an image run's next refinement: capped per run, and priced into that call.

A signal cannot be refused, so the run keeps the newest notes within the cap and logs what it drops; the API
refuses a note that would not fit (409) before it signals. Constants, not settings: workflow code must
compute the same on every worker and on replay."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.pricing import IMAGE_INPUT_TOKENS, QUOTE_INPUT_TOKENS
    from models.usage import CostLimit

MAX_NOTES = 10  # notes waiting for one refinement
MAX_CHARS = 4000  # their characters together
MAX_NOTE_CHARS = 2000  # one note (the API's `Feedback.text` bound); a longer signal is dropped
HEADING_TOKENS = 40  # "Human feedback (must be followed):" above the notes in the refinement's prompt


def fits(pending: list[str], note: str) -> bool:
    """Whether `note` can wait beside `pending` without dropping any of them."""
    return len(pending) < MAX_NOTES and sum(map(len, pending)) + len(note) <= MAX_CHARS


def with_note(pending: list[str], note: str) -> list[str]:
    """`pending` with `note` added and, when over the cap, its oldest notes dropped; a note longer than
    `MAX_NOTE_CHARS` is not added (the caller logs what was dropped)."""
    if len(note) > MAX_NOTE_CHARS:
        return pending
    kept = [note]
    for older in reversed(pending):
        if not fits(kept, older):
            break
        kept.insert(0, older)
    return kept


def prompt_tokens(notes: list[str]) -> int:
    """At most this many input tokens the notes add to the refinement's prompt (a token is at least a byte)."""
    return HEADING_TOKENS + sum(len(note.encode()) + 3 for note in notes) if notes else 0


def reservation_usd(limit: CostLimit | None, notes: list[str]) -> float:
    """What the notes may add to the refinement's cost, beyond its quote: their tokens at the quote's own
    rate per input token, which is at least the dearest text model's input price."""
    if limit is None or not notes:
        return 0.0
    return prompt_tokens(notes) * limit.text_call_usd / (QUOTE_INPUT_TOKENS + IMAGE_INPUT_TOKENS)

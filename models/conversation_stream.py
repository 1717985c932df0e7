"""What a conversation's Workflow Stream carries: turn events from the workflow (topic `turn`) and the
text of the phases that write prose, as the model writes it (topic `text`, from the phase activities).

The stream holds the turn in progress and the one before it (older events are truncated as a turn starts),
so a client that subscribes from offset 0 reads the turn in progress from its start."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from models.conversation import Phase, PhaseRecord, Reply

TURN_TOPIC = "turn"
TEXT_TOPIC = "text"
STREAMED_FIELDS = {Phase.ACTION: "response", Phase.YIELD: "answer"}  # each phase's prose field
ANSWER_PHASE = Phase.YIELD  # the phase whose text is the reply


class TurnEvent(BaseModel):
    """`started` (with the `ask` update's id, None for a told message), one `phase` per phase done, `done`."""

    kind: Literal["started", "phase", "done"]
    turn: int
    ask: str | None = None
    user: str = ""
    phase: PhaseRecord | None = None
    reply: Reply | None = None


class TextDelta(BaseModel):
    """A piece of a phase's text. A new `attempt` (the activity retried) or `take` (a re-ask inside one
    attempt) starts the text again: what an earlier one showed is to be replaced, not added to."""

    turn: int
    phase: Phase
    attempt: int
    take: int = 1
    text: str

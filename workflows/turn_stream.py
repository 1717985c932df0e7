"""A conversation's Workflow Stream, from the workflow's side: each turn's events (started, a phase done,
done) published exactly once by the workflow, beside the text the phase activities publish as the model
writes it. The stream keeps two turns, the one in progress and the one before (so a subscriber that
falls a little behind still reads how the last one ended): what is older is truncated as a turn starts.

Runs that started before streaming replay without it (patch `stream-each-turn`)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import WorkflowStream

    from models.conversation import PhaseRecord, Reply
    from models.conversation_stream import TURN_TOPIC, TurnEvent
    from workflows.patches import STREAM_PATCH

MAX_RUN_EVENTS = 3_600  # each stream poll is an update (two events): hand over well before 2,000 updates


class TurnStream:
    def __init__(self, stream: WorkflowStream) -> None:
        self.stream = stream
        self.events = stream.topic(TURN_TOPIC, type=TurnEvent)
        self.on = False
        self.last_start: int | None = None  # where the previous turn's events begin

    def started(self, turn: int, ask: str | None, user: str, wanted: bool = True) -> bool:
        """A turn begins: drop what came before the previous turn, say which message this one answers.
        Whether this turn streams (`wanted` by the conversation's config, and the run streams: the patch)."""
        self.on = wanted and workflow.patched(STREAM_PATCH.id)
        if self.on:
            if self.last_start is not None:
                self.stream.truncate(self.last_start)
            self.last_start = self.offset()
            self.events.publish(TurnEvent(kind="started", turn=turn, ask=ask, user=user))
        return self.on

    def phase(self, turn: int, record: PhaseRecord) -> None:
        if self.on:
            self.events.publish(TurnEvent(kind="phase", turn=turn, phase=record))

    def done(self, turn: int, reply: Reply) -> None:
        if self.on:
            self.events.publish(TurnEvent(kind="done", turn=turn, reply=reply))

    def offset(self) -> int:
        """The stream's current offset, from its public state (the library's workflow side has no public
        offset; its state encodes the log, at most two turns, once per turn)."""
        state = self.stream.get_state()
        return state.base_offset + len(state.log)

    def crowded(self) -> bool:
        """Time to hand over: stream polls have made this run's history long."""
        return self.on and workflow.info().get_current_history_length() > MAX_RUN_EVENTS

    def detach(self) -> None:
        """Before the run waits for its handlers to finish: release the subscribers' long polls (they
        follow the conversation to its next run, or read the closed one)."""
        self.stream.detach_pollers()

"""`chat`'s live view of a turn, read from the conversation's Workflow Stream: the answer on stdout as the
model writes it, each phase's one-line summary on stderr as it completes.

The `ask` update's reply stays the record: what the stream showed is checked against it at the end, so a
subscriber that fell behind (the stream keeps only the turn in progress) still prints the whole answer."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TextIO

from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from models.conversation import PhaseRecord, Reply
from models.conversation_stream import ANSWER_PHASE, TEXT_TOPIC, TURN_TOPIC, TextDelta, TurnEvent
from starter.common import stderr

POLL_COOLDOWN = timedelta(milliseconds=100)  # between polls when caught up: each poll is an update in history
CATCH_UP_S = 2.0  # after the reply: how long the view may take to show the rest of its turn
SAVE, RESTORE_AND_CLEAR = "\x1b7", "\x1b8\x1b[J"  # a terminal's saved cursor: where the answer starts


class AnswerView:
    """The answer as it arrives. A new attempt (the activity retried) or take (a re-ask) replaces what the
    earlier one showed: while it writes the same text nothing changes and the answer goes on once it passes
    what is shown; when it differs, a terminal erases and rewrites, and a pipe (which cannot take text
    back) prints the final answer on a line of its own, saying so on stderr."""

    def __init__(self, out: TextIO | None = None, show_phase: Callable[[PhaseRecord], None] | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.show_phase = show_phase or (lambda record: None)
        self.version: tuple[int, int] | None = None
        self.current = ""  # the text of the latest attempt and take
        self.shown = ""  # what is on the screen (or in the pipe)
        self.phases_shown = 0
        self.held: list[PhaseRecord] = []  # phases done while the answer is being written: shown after it

    def phase(self, record: PhaseRecord) -> None:
        if self.version is None:
            self.show_phase(record)
        else:
            self.held.append(record)
        self.phases_shown += 1

    def text(self, delta: TextDelta) -> None:
        version = (delta.attempt, delta.take)
        if self.version is not None and version < self.version:
            return  # an attempt already given up on, still writing (its worker lost touch, not its process)
        if version != self.version:
            self._begin()
            self.version, self.current = version, ""
        self.current += delta.text
        self._render(self.current)

    def _begin(self) -> None:
        """The answer's prefix, once; a terminal saves the cursor there (a rewrite goes back to it)."""
        if self.version is None:
            self.out.write("atelier: " + (SAVE if self.tty else ""))

    def _render(self, target: str) -> None:
        if target.startswith(self.shown):
            self.out.write(target[len(self.shown) :])
            self.shown = target
        elif self.shown.startswith(target):  # a new attempt retracing what is shown: wait until it passes it
            return
        elif self.tty:
            self.out.write(RESTORE_AND_CLEAR + target)
            self.shown = target
        self.out.flush()

    def finish(self, reply: Reply) -> None:
        """The reply's text where the stream left off, its citations, then the phases not shown yet."""
        self._begin()
        self.version = self.version or (0, 0)
        self._render(reply.text)
        if self.shown != reply.text:
            stderr.print("[yellow](the answer was rewritten after a retry; in full:)[/]")
            self.out.write("\n" + reply.text)
        self.out.write("\n")
        for number, passage in enumerate(reply.citations, 1):
            self.out.write(f"   [{number}] {passage.title} ({passage.ref}, similarity {passage.score:.2f})\n")
        self.out.flush()
        for record in [*self.held, *reply.phases[self.phases_shown :]]:
            self.show_phase(record)


async def follow_turn(
    stream: WorkflowStreamClient, view: AnswerView, from_offset: int, ask: str | None = None, turn: int | None = None
) -> Reply | None:
    """Show one turn from the stream until it is done (its reply): the turn answering the `ask` update with
    this id, or the turn with this number (None if a later turn has already replaced it)."""
    async for item in stream.subscribe([TURN_TOPIC, TEXT_TOPIC], from_offset, poll_cooldown=POLL_COOLDOWN):
        if item.topic == TURN_TOPIC:
            event = TurnEvent.model_validate(item.data)
            if event.kind == "started" and ask is not None and event.ask == ask:
                turn = event.turn
            elif event.kind == "started" and ask is None and turn is not None and event.turn > turn:
                return None
            elif event.turn == turn and event.kind == "phase" and event.phase is not None:
                view.phase(event.phase)
            elif event.turn == turn and event.kind == "done":
                return event.reply
        elif turn is not None:
            delta = TextDelta.model_validate(item.data)
            if delta.turn == turn and delta.phase == ANSWER_PHASE:
                view.text(delta)
    return None


async def stream_offset(client: Client, handle: WorkflowHandle) -> tuple[WorkflowStreamClient, int] | None:
    """The conversation's stream and its current offset; None when its run has no stream (started before
    streaming: the caller shows the turn the old way)."""
    stream = WorkflowStreamClient.create(client, handle.id)
    try:
        return stream, await stream.get_offset()
    except WorkflowQueryFailedError:  # no such query on runs from before streaming
        return None


async def streamed_send(
    stream: WorkflowStreamClient,
    offset: int,
    ask: Callable[[str], asyncio.Future[Reply] | asyncio.Task[Reply]],
    view: AnswerView,
) -> Reply:
    """Ask (with a fresh update id) and show the turn answering it as it is written."""
    ask_id = f"ask-{uuid.uuid4().hex[:16]}"
    reply_task = asyncio.ensure_future(ask(ask_id))
    watcher = asyncio.ensure_future(follow_turn(stream, view, offset, ask=ask_id))
    try:
        reply = await reply_task
        await asyncio.wait([watcher], timeout=CATCH_UP_S)
    finally:
        watcher.cancel()
    view.finish(reply)
    return reply


async def resume_turn(stream: WorkflowStreamClient, turn: int, view: AnswerView) -> bool:
    """Show the turn in progress from its start (the stream holds it from offset 0) to its reply; whether
    it was still there to show (a turn two turns back is gone)."""
    if (reply := await follow_turn(stream, view, 0, turn=turn)) is None:
        return False
    view.finish(reply)
    return True

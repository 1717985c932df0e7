"""A phase activity's side of the conversation's Workflow Stream: the text the model writes, published as
it arrives, a few pieces a second (one signal each), tagged with the turn, phase, attempt and take."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from temporalio import activity
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from activities.providers.base import TextStream
from models.conversation import Phase
from models.conversation_stream import STREAMED_FIELDS, TEXT_TOPIC, TextDelta

PUBLISH_EVERY_S = 0.25  # text gathered this long goes out as one piece (the first piece goes at once)
log = logging.getLogger(__name__)


class TextPublisher:
    """`async with TextPublisher(turn, phase) as text:` then hand `text.stream` to the provider.

    It flushes the stream client itself (`flush()` from one task of its own) rather than running the client's
    background flusher: that flusher, cancelled just as a flush was asked for, can miss its cancellation on
    Python 3.11 (`asyncio.wait_for`) and keep the activity from ever returning."""

    def __init__(self, turn: int, phase: Phase, every_s: float = PUBLISH_EVERY_S) -> None:
        self.turn, self.phase, self.every_s = turn, phase, every_s
        self.attempt = activity.info().attempt
        self.take = 1
        self.pending = ""
        self.stream = TextStream(STREAMED_FIELDS[phase], self.send, self.restart)
        self.client = WorkflowStreamClient.from_within_activity()
        self.topic = self.client.topic(TEXT_TOPIC, type=TextDelta)
        self._writing = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TextPublisher:
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        self._publish()
        await self._flush()

    def send(self, text: str) -> None:
        self.pending += text
        self._writing.set()  # the first words go at once: time to first text is what people feel

    def restart(self) -> None:
        """A re-ask: the next pieces replace what this take showed."""
        self._publish()
        self.take += 1

    def _publish(self) -> None:
        if self.pending:
            delta = TextDelta(turn=self.turn, phase=self.phase, attempt=self.attempt, take=self.take, text=self.pending)
            self.topic.publish(delta)
            self.pending = ""

    async def _flush(self) -> None:
        try:
            await self.client.flush()
        except Exception as err:  # the text is a view of the call: the call goes on, its result still counts
            log.warning("could not publish %s text: %s", self.phase.value, err)

    async def _tick(self) -> None:
        await self._writing.wait()
        while True:
            self._publish()
            await self._flush()
            await asyncio.sleep(self.every_s)

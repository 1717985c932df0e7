"""A run's events as Server-Sent Events (`GET /v1/runs/{id}/events`: `routes/events.py`), each with its
sequence number as `id:`. Reconnecting with `Last-Event-ID` resumes after that event; the stream ends with the terminal
event. Events come from the batches `RunEventsWorkflow` records (started with the run, or on the first
request for a run started elsewhere, e.g. by the CLI).

Streams are limited (`streams.Streams`): so many open per tenant and per process (then 429 with
Retry-After), each living at most ATELIER_STREAM_MAX_S (then it ends with a `retry:` hint and the client
resumes with Last-Event-ID). The streams of one run share one watcher, which reads the store for them all."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Query
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from kit.storage import events_prefix
from kit.urls import Urls
from models.api import TERMINAL_EVENTS
from models.events import Batch, EventFeed, RunEvent, Webhook
from models.pipelines import LISTED
from models.settings import WORKFLOW_QUEUE
from models.workflow_interfaces import RunEventsWorkflow
from starter.api.service import Caller, Service, owned
from starter.api.streams import RunWatch, Slot, Streams

KEEP_ALIVE_S = 15.0
RESUME_MS = 1000  # the `retry:` hint a stream ends with when its life is over
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {  # an events route's answers, as OpenAPI documents them
    200: {"content": {"text/event-stream": {}}},
    204: {"description": "the stream has ended already"},
}


def resume_point(
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
    after: Annotated[int | None, Query(ge=0, description="resume after this event (as Last-Event-ID)")] = None,
) -> int:
    """The event a stream resumes after: a reconnecting client's `Last-Event-ID`, else `?after=`, else none."""
    return last_event_id if last_event_id is not None else after or 0


ResumeAfter = Annotated[int, Depends(resume_point)]


def feed_id(run_id: str) -> str:
    return f"{run_id}~events"


async def ensure_feed(svc: Service, run_id: str, pipeline: str, tenant: str, webhooks: list[Webhook]) -> None:
    """Start following the run (once: the feed's id is the run's)."""
    with contextlib.suppress(WorkflowAlreadyStartedError):  # it ran to the end already: its batches are there
        await svc.client.start_workflow(
            RunEventsWorkflow.run,
            EventFeed(run_id=run_id, pipeline=pipeline, tenant=tenant, webhooks=webhooks),
            id=feed_id(run_id),
            task_queue=WORKFLOW_QUEUE,
            static_summary=f"events of {run_id}",
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )


async def recorded(watch: RunWatch, after: int, until: float) -> AsyncIterator[RunEvent | None]:
    """Every recorded event after `after`, in order, then each new one as the run's watcher reads it, until
    the terminal one or `until` (monotonic time); None now and then while nothing happens: a keep-alive."""
    at = watch.index_after(after)
    quiet_since = time.monotonic()
    while True:
        news = watch.news  # set once events beyond these are read
        for event in watch.events[at:]:
            at += 1
            quiet_since = time.monotonic()
            yield event
            if event.type in TERMINAL_EVENTS:
                return
        if at < len(watch.events):
            continue  # more came while those were sent
        now = time.monotonic()
        if now >= until:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(until, quiet_since + KEEP_ALIVE_S) - now):
                await news.wait()
        if time.monotonic() >= quiet_since + KEEP_ALIVE_S:
            quiet_since = time.monotonic()
            yield None


async def newest_batch(svc: Service, run_id: str) -> Batch | None:
    keys = await svc.store.keys(events_prefix(run_id))
    return Batch.model_validate_json(await svc.store.read(max(keys))) if keys else None


async def last_seq(svc: Service, run_id: str) -> int:
    """The sequence number of the run's last recorded event (0: none yet): a page rendered now follows on
    from there."""
    batch = await newest_batch(svc, run_id)
    return max((e.seq for e in batch.events), default=batch.first_seq - 1) if batch else 0


def sse(urls: Urls, event: RunEvent | None) -> str:
    if event is None:
        return ": keep-alive\n\n"
    data = json.dumps(urls.with_artifact_links(event.model_dump(mode="json")))
    return f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n"


class EventStream(StreamingResponse):
    """A stream that runs `done` however it ends: the last event sent, its life over, the client gone."""

    def __init__(self, content: AsyncIterator[str], done: Callable[[], None]) -> None:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.done = done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.done()


async def follow(svc: Service, streams: Streams, caller: Caller, run_id: str, start: int) -> Response:
    """The run's events after `start` as a stream, in one of the caller's slots (429 before any work when it
    has none left); 204 when the stream has ended already."""
    slot = streams.open(caller.tenant)
    try:
        return await _stream(svc, streams, slot, caller, run_id, start)
    except BaseException:
        streams.close(slot)
        raise


async def _stream(svc: Service, streams: Streams, slot: Slot, caller: Caller, run_id: str, start: int) -> Response:
    described = await owned(svc, caller, run_id, set(LISTED))  # a pipeline's run or an experiment
    watch = await streams.watch(slot, run_id)
    if watch.terminal_seq is not None and start >= watch.terminal_seq:
        await watch.look()  # an experiment started again after its end (rerun-failed) goes on past it
    if (last := watch.terminal_seq) is not None and start >= last:
        streams.close(slot)
        return Response(status_code=204)  # the stream has ended: EventSource stops reconnecting on a 204
    await ensure_feed(svc, run_id, LISTED[described.workflow_type], caller.tenant, [])
    until = slot.opened + streams.max_s * random.uniform(0.9, 1.0)  # a little less for some: resumes spread

    async def stream() -> AsyncIterator[str]:
        ended = False
        async for event in recorded(watch, start, until):
            ended = event is not None and event.type in TERMINAL_EVENTS
            yield sse(svc.urls, event)
        if not ended:  # its life is over: the client resumes with Last-Event-ID
            yield f"retry: {RESUME_MS}\n\n"
        streams.close(slot)  # before the client sees the end (the response closes it too, however it ends)

    return EventStream(stream(), lambda: streams.close(slot))

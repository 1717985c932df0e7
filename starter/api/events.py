"""`GET /v1/runs/{id}/events`: the run's events as Server-Sent Events, each with its sequence number as
`id:`. Reconnecting with `Last-Event-ID` resumes after that event; the stream ends with the terminal
event. Events come from the batches `RunEventsWorkflow` records (started with the run, or on the first
request for a run started elsewhere, e.g. by the CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response, StreamingResponse
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.run_events import events_prefix
from models.api import TERMINAL_EVENTS
from models.events import Batch, EventFeed, RunEvent, Webhook
from models.settings import WORKFLOW_QUEUE, Settings
from starter.api.links import with_links
from starter.api.pipelines import pipeline_of_type
from starter.api.runs import owned
from starter.api.service import Service, Svc, Who
from workflows.run_events import RunEventsWorkflow

router = APIRouter(prefix="/v1/runs", tags=["events"])
POLL_S = 0.25
KEEP_ALIVE_S = 15.0


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


async def recorded(svc: Service, run_id: str, after: int) -> AsyncIterator[RunEvent | None]:
    """Every recorded event after `after`, in order, then waiting for more until the terminal one
    (None now and then while nothing happens: a keep-alive)."""
    prefix = events_prefix(run_id) + "/"
    read: set[str] = set()
    last = after
    quiet_since = time.monotonic()
    while True:
        fresh = [k for k in await svc.store.keys(events_prefix(run_id)) if k not in read and k.startswith(prefix)]
        for key in sorted(fresh):
            batch = Batch.model_validate_json(await svc.store.read(key))
            read.add(key)
            for event in batch.events:
                if event.seq > last:
                    last = event.seq
                    quiet_since = time.monotonic()
                    yield event
                    if event.type in TERMINAL_EVENTS:
                        return
        if time.monotonic() - quiet_since > KEEP_ALIVE_S:
            quiet_since = time.monotonic()
            yield None
        await asyncio.sleep(POLL_S)


async def newest_batch(svc: Service, run_id: str) -> Batch | None:
    keys = await svc.store.keys(events_prefix(run_id))
    return Batch.model_validate_json(await svc.store.read(max(keys))) if keys else None


async def terminal_seq(svc: Service, run_id: str) -> int | None:
    """The sequence number of the run's terminal event, once it is recorded (in the last batch)."""
    batch = await newest_batch(svc, run_id)
    return next((e.seq for e in batch.events if e.type in TERMINAL_EVENTS), None) if batch else None


async def last_seq(svc: Service, run_id: str) -> int:
    """The sequence number of the run's last recorded event (0: none yet): a page rendered now follows on
    from there."""
    batch = await newest_batch(svc, run_id)
    return max((e.seq for e in batch.events), default=batch.first_seq - 1) if batch else 0


def sse(settings: Settings, event: RunEvent | None) -> str:
    if event is None:
        return ": keep-alive\n\n"
    data = json.dumps(with_links(settings, event.model_dump(mode="json")))
    return f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n"


@router.get(
    "/{run_id}/events",
    summary="The run's events (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 204: {"description": "the stream has ended already"}},
)
async def run_events(
    run_id: str,
    svc: Svc,
    caller: Who,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
    after: Annotated[int | None, Query(ge=0, description="resume after this event (as Last-Event-ID)")] = None,
) -> Response:
    _, described = await owned(svc, caller, run_id)
    start = last_event_id if last_event_id is not None else after or 0
    if (last := await terminal_seq(svc, run_id)) is not None and start >= last:
        return Response(status_code=204)  # the stream has ended: EventSource stops reconnecting on a 204
    await ensure_feed(svc, run_id, pipeline_of_type(described.workflow_type).name, caller.tenant, [])

    async def stream() -> AsyncIterator[str]:
        async for event in recorded(svc, run_id, start):
            yield sse(svc.settings, event)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

"""`GET /v1/runs/{id}/events`: the run's events as Server-Sent Events (the work: `starter.api.events`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from starter.api import events
from starter.api.service import Svc, Who
from starter.api.streams import Streams

router = APIRouter(prefix="/v1/runs", tags=["events"])


def open_streams(request: Request, svc: Svc) -> Streams:
    """This process's streams (made with the first)."""
    state = request.app.state
    if getattr(state, "streams", None) is None:
        limits = svc.settings
        state.streams = Streams(svc.store, limits.streams_per_tenant, limits.streams_per_process, limits.stream_max_s)
    return state.streams


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
    streams: Annotated[Streams, Depends(open_streams)],
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
    after: Annotated[int | None, Query(ge=0, description="resume after this event (as Last-Event-ID)")] = None,
) -> Response:
    start = last_event_id if last_event_id is not None else after or 0
    return await events.follow(svc, streams, caller, run_id, start)

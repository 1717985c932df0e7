"""`GET /v1/runs/{id}/events`: the run's events as Server-Sent Events (the work: `starter.api.events`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response, StreamingResponse

from starter.api import events
from starter.api.service import Svc, Who

router = APIRouter(prefix="/v1/runs", tags=["events"])


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
    start = last_event_id if last_event_id is not None else after or 0
    return await events.follow(svc, svc.streams, caller, run_id, start)

"""`GET /v1/runs/{id}/events`: the run's events as Server-Sent Events (the work: `starter.api.events`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from starter.api import events
from starter.api.events import STREAM_RESPONSES, ResumeAfter
from starter.api.service import Svc, Who

router = APIRouter(prefix="/v1/runs", tags=["events"])


@router.get(
    "/{run_id}/events",
    summary="The run's events (Server-Sent Events)",
    response_class=StreamingResponse,
    responses=STREAM_RESPONSES,
)
async def run_events(run_id: str, svc: Svc, caller: Who, start: ResumeAfter) -> Response:
    return await events.follow(svc, svc.streams, caller, run_id, start)

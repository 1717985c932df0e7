"""`/v1/runs`: list, status, result, cancel, feedback (the work: `starter.api.runs`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from models.api import Feedback, Pipeline, RunPage, RunView
from starter.api import runs
from starter.api.service import Svc, Who

router = APIRouter(prefix="/v1/runs", tags=["runs"])


@router.get("", response_model=RunPage, summary="List runs, newest first")
async def list_runs(
    svc: Svc,
    caller: Who,
    pipeline: Pipeline | None = None,
    state: Annotated[str | None, Query(description="the pipeline's state or Temporal's, e.g. COMPLETED")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=4000)] = None,
) -> Any:
    return await runs.listing(svc, caller, pipeline, state, limit, cursor)


@router.get("/{run_id}", response_model=RunView, summary="A run's status, progress, usage and failures")
async def get_run(run_id: str, svc: Svc, caller: Who) -> Any:
    return await runs.current(svc, caller, run_id)


@router.get("/{run_id}/result", summary="A finished run's result, with links to its artifacts")
async def get_result(run_id: str, svc: Svc, caller: Who) -> Any:
    return await runs.result(svc, caller, run_id)


@router.post("/{run_id}/cancel", status_code=202, response_model=RunView, summary="Cancel a run")
async def cancel_run(run_id: str, svc: Svc, caller: Who) -> Any:
    """The run stops its spending and ends cancelled with what it made; a finished run is left as it is."""
    return await runs.cancel(svc, caller, run_id)


@router.post("/{run_id}/feedback", status_code=202, summary="Steer an image run's next refinement")
async def give_feedback(run_id: str, body: Feedback, svc: Svc, caller: Who) -> dict[str, str]:
    await runs.steer(svc, caller, run_id, body.text)
    return {"status": "accepted"}

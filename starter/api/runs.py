"""Following runs: list, status, result, cancel, feedback (`/v1/runs`). Another tenant's run answers 404,
exactly as an unknown one."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from activities.run_reading import KNOWN_STATES, STATUS, BadCursor, RunReader, runs_query
from models.api import Feedback, Pipeline, RunPage, RunView
from models.image import LoopState
from models.pipelines import WORKFLOW_TYPES
from starter.api.caps import tenant_runs
from starter.api.links import run_urls, with_links
from starter.api.problems import ApiProblem, FieldProblem, invalid
from starter.api.service import Caller, Service, Svc, Who
from starter.api.service import owned as owned_workflow
from workflows.feedback import MAX_CHARS, MAX_NOTES
from workflows.feedback import fits as feedback_fits
from workflows.image_refinement import ImageRefinementWorkflow

router = APIRouter(prefix="/v1/runs", tags=["runs"])


def reader(svc: Service) -> RunReader:
    """How the API reads runs (the Studio reads them through its caches: `starter.studio.runs_data`)."""
    return RunReader(svc.client, svc.store)


async def owned(svc: Service, caller: Caller, workflow_id: str) -> tuple[WorkflowHandle, Any]:
    """The caller's run (of a pipeline the API starts) and its description; 404 for anyone else's."""
    found = await owned_workflow(svc, caller, workflow_id, set(WORKFLOW_TYPES))
    return svc.client.get_workflow_handle(workflow_id), found


async def view(svc: Service, run: WorkflowExecution, progress: dict | None = None) -> RunView:
    """The run as the API shows it, with its links (the Studio's rows and heads are views of it)."""
    return await reader(svc).view(run, run_urls(svc.settings, run.id), progress)


@router.get("", response_model=RunPage, summary="List runs, newest first")
async def list_runs(
    svc: Svc,
    caller: Who,
    pipeline: Pipeline | None = None,
    state: Annotated[str | None, Query(description="the pipeline's state or Temporal's, e.g. COMPLETED")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=4000)] = None,
) -> Any:
    if state is not None and state.upper() not in KNOWN_STATES:
        return invalid([FieldProblem(field="query.state", message=f"one of {', '.join(KNOWN_STATES)}")])
    query = runs_query(tenant_runs(caller), pipeline, state.upper() if state is not None else None)
    bad_cursor = invalid([FieldProblem(field="query.cursor", message="not a cursor this API gave")])
    try:
        runs, more = await reader(svc).page(query, limit, cursor)
    except BadCursor:
        return bad_cursor
    except RPCError as exc:
        if cursor is not None and exc.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.UNKNOWN):
            return bad_cursor
        raise
    return RunPage(runs=[await view(svc, run) for run in runs], next_cursor=more)


@router.get("/{run_id}", response_model=RunView, summary="A run's status, progress, usage and failures")
async def get_run(run_id: str, svc: Svc, caller: Who) -> Any:
    _, described = await owned(svc, caller, run_id)
    status = await reader(svc).status(described)
    return await view(svc, described, status.model_dump(mode="json") if status is not None else None)


@router.get("/{run_id}/result", summary="A finished run's result, with links to its artifacts")
async def get_result(run_id: str, svc: Svc, caller: Who) -> Any:
    _, described = await owned(svc, caller, run_id)
    if described.status == WorkflowExecutionStatus.RUNNING:
        raise ApiProblem(409, "not finished", f"run {run_id!r} is still running", {"Retry-After": "5"})
    if described.status != WorkflowExecutionStatus.COMPLETED:
        raise ApiProblem(409, "no result", f"run {run_id!r} ended {STATUS[described.status]}")
    result = await reader(svc).result(described)
    return with_links(svc.settings, json.loads(result.model_dump_json()))


@router.post("/{run_id}/cancel", status_code=202, response_model=RunView, summary="Cancel a run")
async def cancel_run(run_id: str, svc: Svc, caller: Who) -> Any:
    """The run stops its spending and ends cancelled with what it made; a finished run is left as it is."""
    handle, described = await owned(svc, caller, run_id)
    if described.status == WorkflowExecutionStatus.RUNNING:
        await handle.cancel()
    return await view(svc, described)


@router.post("/{run_id}/feedback", status_code=202, summary="Steer an image run's next refinement")
async def give_feedback(run_id: str, body: Feedback, svc: Svc, caller: Who) -> dict[str, str]:
    handle, described = await owned(svc, caller, run_id)
    if described.workflow_type != ImageRefinementWorkflow.__name__:
        raise ApiProblem(409, "not an image run", "feedback steers the image loop only")
    if described.status != WorkflowExecutionStatus.RUNNING:
        raise ApiProblem(409, "run finished", f"run {run_id!r} is no longer running")
    note = body.text.strip()
    state: LoopState | None = await reader(svc).status(described)
    if state is not None and not feedback_fits(state.pending_feedback, note):  # unanswered: the run caps it itself
        waiting = f"{len(state.pending_feedback)} notes ({sum(map(len, state.pending_feedback))} characters)"
        raise ApiProblem(
            409,
            "feedback full",
            f"{waiting} wait for the next refinement; at most {MAX_NOTES} notes, {MAX_CHARS} characters together",
        )
    await handle.signal(ImageRefinementWorkflow.feedback, note)
    return {"status": "accepted"}

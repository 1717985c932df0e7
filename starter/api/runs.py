"""Following runs: list, status, result, cancel, feedback (`/v1/runs`). Another tenant's run answers 404,
exactly as an unknown one."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from models.api import Feedback, RunPage, RunStatus, RunView
from models.image import LoopState
from models.search_attributes import COST, SCORE
from starter.api.caps import tenant_runs
from starter.api.links import run_urls, with_links
from starter.api.pipelines import PIPELINES, WORKFLOW_TYPES, pipeline_of_type
from starter.api.problems import ApiProblem, FieldProblem, invalid
from starter.api.service import Caller, Service, Svc, Who
from starter.api.service import owned as owned_workflow
from starter.common import bounded_query
from starter.runs_cmd import CLOSED_BY_TEMPORAL, KNOWN_STATES, state_of
from workflows.feedback import MAX_CHARS, MAX_NOTES
from workflows.feedback import fits as feedback_fits
from workflows.image_refinement import ImageRefinementWorkflow

router = APIRouter(prefix="/v1/runs", tags=["runs"])
STATUS: dict[WorkflowExecutionStatus | None, RunStatus] = {
    None: "running",
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
}


async def owned(svc: Service, caller: Caller, workflow_id: str) -> tuple[WorkflowHandle, Any]:
    """The caller's run (of a pipeline the API starts) and its description; 404 for anyone else's."""
    found = await owned_workflow(svc, caller, workflow_id, set(WORKFLOW_TYPES))
    return svc.client.get_workflow_handle(workflow_id), found


def view(svc: Service, run: WorkflowExecution, progress: dict | None = None) -> RunView:
    pipe = pipeline_of_type(run.workflow_type)
    progress = progress or {}
    usage = progress.get("usage")
    return RunView(
        id=run.id,
        pipeline=pipe.name if pipe else run.workflow_type,
        status=STATUS[run.status],
        state=state_of(run),
        started_at=run.start_time,
        closed_at=run.close_time,
        progress=progress or None,
        usage=usage,
        cost_usd=run.typed_search_attributes.get(COST) or (usage or {}).get("estimated_cost_usd"),
        score=run.typed_search_attributes.get(SCORE),
        budget_exhausted=bool(progress.get("budget_exhausted")),
        failures=progress.get("failures", []),
        urls=run_urls(svc.settings, run.id),
    )


CURSOR = b"atl1:"  # what starts every cursor this API gives (then Temporal's page token)


def page_token(value: str | None) -> bytes | None:
    """Temporal's page token from a cursor this API gave; BadCursor for anything else."""
    if value is None:
        return None
    try:
        raw = base64.b64decode(value.encode(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.startswith(CURSOR) or len(raw) == len(CURSOR):
        raise BadCursor(value)
    return raw.removeprefix(CURSOR)


class BadCursor(ValueError):
    pass


@router.get("", response_model=RunPage, summary="List runs, newest first")
async def list_runs(
    svc: Svc,
    caller: Who,
    pipeline: Literal["image", "world", "meme"] | None = None,
    state: Annotated[str | None, Query(description="the pipeline's state or Temporal's, e.g. COMPLETED")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=4000)] = None,
) -> Any:
    parts = [tenant_runs(caller)]
    if pipeline:
        parts.append(f'WorkflowType = "{PIPELINES[pipeline].workflow.__name__}"')
    if state is not None:
        if state.upper() not in KNOWN_STATES:
            return invalid([FieldProblem(field="query.state", message=f"one of {', '.join(KNOWN_STATES)}")])
        parts.append(state_filter(state.upper()))
    bad_cursor = invalid([FieldProblem(field="query.cursor", message="not a cursor this API gave")])
    try:
        listing = svc.client.list_workflows(" AND ".join(parts), page_size=limit, next_page_token=page_token(cursor))
        await listing.fetch_next_page(page_size=limit)
    except BadCursor:
        return bad_cursor
    except RPCError as exc:
        if cursor is not None and exc.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.UNKNOWN):
            return bad_cursor
        raise
    return RunPage(
        runs=[view(svc, run) for run in listing.current_page or []], next_cursor=next_cursor(listing.next_page_token)
    )


def next_cursor(token: bytes | None) -> str | None:
    """The cursor this API gives for Temporal's page token."""
    return base64.urlsafe_b64encode(CURSOR + token).decode() if token else None


def state_filter(state: str) -> str:
    if state == "RUNNING":
        return 'ExecutionStatus = "Running"'
    if state in CLOSED_BY_TEMPORAL:
        return f'ExecutionStatus = "{CLOSED_BY_TEMPORAL[state]}"'
    return f'AtelierState = "{state}"'


@router.get("/{run_id}", response_model=RunView, summary="A run's status, progress, usage and failures")
async def get_run(run_id: str, svc: Svc, caller: Who) -> Any:
    handle, described = await owned(svc, caller, run_id)
    pipe = pipeline_of_type(described.workflow_type)
    status = await bounded_query(handle, pipe.status_query, pipe.status_type | None)
    return view(svc, described, status.model_dump(mode="json") if status is not None else None)


@router.get("/{run_id}/result", summary="A finished run's result, with links to its artifacts")
async def get_result(run_id: str, svc: Svc, caller: Who) -> Any:
    _, described = await owned(svc, caller, run_id)
    if described.status == WorkflowExecutionStatus.RUNNING:
        raise ApiProblem(409, "not finished", f"run {run_id!r} is still running", {"Retry-After": "5"})
    if described.status != WorkflowExecutionStatus.COMPLETED:
        raise ApiProblem(409, "no result", f"run {run_id!r} ended {STATUS[described.status]}")
    pipe = pipeline_of_type(described.workflow_type)
    result = await svc.client.get_workflow_handle(run_id, result_type=pipe.result_type).result()
    return with_links(svc.settings, json.loads(result.model_dump_json()))


@router.post("/{run_id}/cancel", status_code=202, response_model=RunView, summary="Cancel a run")
async def cancel_run(run_id: str, svc: Svc, caller: Who) -> Any:
    """The run stops its spending and ends cancelled with what it made; a finished run is left as it is."""
    handle, described = await owned(svc, caller, run_id)
    if described.status == WorkflowExecutionStatus.RUNNING:
        await handle.cancel()
    return view(svc, described)


@router.post("/{run_id}/feedback", status_code=202, summary="Steer an image run's next refinement")
async def give_feedback(run_id: str, body: Feedback, svc: Svc, caller: Who) -> dict[str, str]:
    handle, described = await owned(svc, caller, run_id)
    if described.workflow_type != ImageRefinementWorkflow.__name__:
        raise ApiProblem(409, "not an image run", "feedback steers the image loop only")
    if described.status != WorkflowExecutionStatus.RUNNING:
        raise ApiProblem(409, "run finished", f"run {run_id!r} is no longer running")
    note = body.text.strip()
    state = await bounded_query(handle, ImageRefinementWorkflow.state, LoopState | None)
    if state is not None and not feedback_fits(state.pending_feedback, note):  # unanswered: the run caps it itself
        waiting = f"{len(state.pending_feedback)} notes ({sum(map(len, state.pending_feedback))} characters)"
        raise ApiProblem(
            409,
            "feedback full",
            f"{waiting} wait for the next refinement; at most {MAX_NOTES} notes, {MAX_CHARS} characters together",
        )
    await handle.signal(ImageRefinementWorkflow.feedback, note)
    return {"status": "accepted"}

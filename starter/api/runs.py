"""Following runs, for the API (`/v1/runs`: `routes/runs.py`) and the Studio: list, status, result, cancel,
feedback. Another tenant's run answers 404, exactly as an unknown one."""

from __future__ import annotations

import json
from typing import Any

from temporalio.client import WorkflowExecution, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from kit.run_reading import KNOWN_STATES, STATUS, BadCursor, RunReader, runs_query
from models.api import RunPage, RunView
from models.experiment import EXPERIMENT_TYPE
from models.image import LoopState
from models.pipelines import WORKFLOW_TYPES
from models.workflow_interfaces import ImageRefinementWorkflow
from starter.api.caps import tenant_runs
from starter.api.errors import Conflict, Invalid
from starter.api.service import Caller, Service
from starter.api.service import owned as owned_workflow
from workflows.feedback import MAX_CHARS, MAX_NOTES
from workflows.feedback import fits as feedback_fits

BAD_CURSOR = "not a cursor this API gave"


def reader(svc: Service) -> RunReader:
    """How the API reads runs (the Studio reads them through its caches: `starter.studio.runs_data`)."""
    return RunReader(svc.client, svc.store)


async def owned(svc: Service, caller: Caller, workflow_id: str) -> tuple[WorkflowHandle, Any]:
    """The caller's run (of a pipeline the API starts) and its description; 404 for anyone else's."""
    found = await owned_workflow(svc, caller, workflow_id, set(WORKFLOW_TYPES))
    return svc.client.get_workflow_handle(workflow_id), found


async def view(svc: Service, run: WorkflowExecution, progress: dict | None = None) -> RunView:
    """The run as the API shows it, with its links (the Studio's rows and heads are views of it)."""
    experiment = run.workflow_type == EXPERIMENT_TYPE  # its links are `/v1/experiments/{id}`'s
    urls = svc.urls.experiment_urls(run.id) if experiment else svc.urls.run_urls(run.id)
    return await reader(svc).view(run, urls, progress)


async def listing(
    svc: Service, caller: Caller, pipeline: str | None, state: str | None, limit: int, cursor: str | None
) -> RunPage:
    """A page of the caller's runs, newest first; 422 for a state or a cursor this API does not know."""
    if state is not None and state.upper() not in KNOWN_STATES:
        raise Invalid("query.state", f"one of {', '.join(KNOWN_STATES)}")
    query = runs_query(tenant_runs(caller), pipeline, state.upper() if state is not None else None)
    try:
        runs, more = await reader(svc).page(query, limit, cursor)
    except BadCursor as exc:
        raise Invalid("query.cursor", BAD_CURSOR) from exc
    except RPCError as exc:
        if cursor is not None and exc.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.UNKNOWN):
            raise Invalid("query.cursor", BAD_CURSOR) from exc
        raise
    return RunPage(runs=[await view(svc, run) for run in runs], next_cursor=more)


async def current(svc: Service, caller: Caller, run_id: str) -> RunView:
    """The run as it is now, with its pipeline's live status."""
    _, described = await owned(svc, caller, run_id)
    status = await reader(svc).status(described)
    return await view(svc, described, status.model_dump(mode="json") if status is not None else None)


async def result(svc: Service, caller: Caller, run_id: str) -> Any:
    """A finished run's result as JSON, with links to its artifacts; 409 before it finishes, or when it failed."""
    _, described = await owned(svc, caller, run_id)
    if described.status == WorkflowExecutionStatus.RUNNING:
        raise Conflict("not finished", f"run {run_id!r} is still running", retry_after_s=5)
    if described.status != WorkflowExecutionStatus.COMPLETED:
        raise Conflict("no result", f"run {run_id!r} ended {STATUS[described.status]}")
    found = await reader(svc).result(described)
    return svc.urls.with_artifact_links(json.loads(found.model_dump_json()))


async def cancel(svc: Service, caller: Caller, run_id: str) -> RunView:
    """Cancel a running run (a finished one is left as it is); the run as it was asked."""
    handle, described = await owned(svc, caller, run_id)
    if described.status == WorkflowExecutionStatus.RUNNING:
        await handle.cancel()
    return await view(svc, described)


async def steer(svc: Service, caller: Caller, run_id: str, text: str) -> None:
    """Send a running image run a note for its next refinement; 409 for another pipeline, a finished run, or a
    run whose unanswered notes are full."""
    handle, described = await owned(svc, caller, run_id)
    if described.workflow_type != ImageRefinementWorkflow.__name__:
        raise Conflict("not an image run", "feedback steers the image loop only")
    if described.status != WorkflowExecutionStatus.RUNNING:
        raise Conflict("run finished", f"run {run_id!r} is no longer running")
    note = text.strip()
    state: LoopState | None = await reader(svc).status(described)
    if state is not None and not feedback_fits(state.pending_feedback, note):  # unanswered: the run caps it itself
        waiting = f"{len(state.pending_feedback)} notes ({sum(map(len, state.pending_feedback))} characters)"
        limits = f"at most {MAX_NOTES} notes, {MAX_CHARS} characters together"
        raise Conflict("feedback full", f"{waiting} wait for the next refinement; {limits}")
    await handle.signal(ImageRefinementWorkflow.feedback, note)

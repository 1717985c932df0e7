"""Reading a run, one way for the API, the Studio and the event feed: the run as the API shows it (`RunView`),
its pipeline's live status and result, the job it was started with, what it has stored, and a page of runs at
a time. The Studio keeps what cannot change (`starter/studio/runs_data.py`: this reader with caches).

It reads, never changes, a run; it imports nothing of `starter` (the event feed runs in the worker)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from kit.pictures import LAYOUTS
from kit.storage import ArtifactStore, artifact_key
from models.api import BranchOf, RunStatus, RunUrls, RunView
from models.pipelines import LISTED, PIPELINES, spec_of
from models.search_attributes import COST, SCORE, STATE, STATES

QUERY_TIMEOUT = timedelta(seconds=2)  # a query no worker answers in this time answers None
MEMO_TEXT = "atelier_text"  # the run's prompt or topic, as its list shows it (`starter.run_labels`)
MEMO_RERUN = "atelier_rerun_of"  # the run this one was started again from (`starter.api.creates`)
MEMO_BRANCH = "atelier_branch_of"  # {run, from_iteration}: the run and iteration a branch started from
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
# Temporal's own statuses a run can end in without its workflow saying so (failed, cancelled, terminated…)
CLOSED_BY_TEMPORAL = {"FAILED": "Failed", "CANCELLED": "Canceled", "TERMINATED": "Terminated", "TIMED_OUT": "TimedOut"}
KNOWN_STATES = sorted({*STATES, *CLOSED_BY_TEMPORAL})
CURSOR = b"atl1:"  # what starts every cursor this API gives (then Temporal's page token)


def state_of(run: WorkflowExecution) -> str:
    """The pipeline's own state; Temporal's status when the run ended without saying (failed, terminated…)."""
    named = run.typed_search_attributes.get(STATE)
    status = run.status.name if run.status else "UNKNOWN"
    if status == "CANCELED":
        status = "CANCELLED"
    if run.status in (WorkflowExecutionStatus.RUNNING, None) or (named and named not in {"RUNNING", "ACTIVE"}):
        return named or status
    return status


def state_filter(state: str, searchable: bool = True) -> str:
    """The visibility filter for runs in one of `KNOWN_STATES`, as `state_of` names them: running, in the
    pipeline's own state (`AtelierState`), or ended by Temporal (failed, cancelled…: either names it). Without
    Atelier's search attributes on the server (`searchable=False`), by Temporal's status alone: ValueError for
    a state only a pipeline names."""
    if state == "RUNNING":
        return 'ExecutionStatus = "Running"'
    by_temporal = f'ExecutionStatus = "{CLOSED_BY_TEMPORAL[state]}"' if state in CLOSED_BY_TEMPORAL else None
    by_atelier = f'{STATE.name} = "{state}"' if searchable else None
    either = [part for part in (by_atelier, by_temporal) if part]
    if not either:
        raise ValueError(f"{state}: needs Atelier's search attributes on the server")
    return f"({' OR '.join(either)})"


def runs_query(runs: str, pipeline: str | None = None, state: str | None = None) -> str:
    """The visibility filter `runs` (whose runs), narrowed to one pipeline and one of `KNOWN_STATES`."""
    parts = [runs]
    if pipeline:
        parts.append(f'WorkflowType = "{PIPELINES[pipeline].workflow_type}"')
    if state:
        parts.append(state_filter(state))
    return " AND ".join(parts)


class BadCursor(ValueError):
    """A cursor this API did not give."""


def page_token(cursor: str | None) -> bytes | None:
    """Temporal's page token from a cursor this API gave; BadCursor for anything else."""
    if cursor is None:
        return None
    try:
        raw = base64.b64decode(cursor.encode(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.startswith(CURSOR) or len(raw) == len(CURSOR):
        raise BadCursor(cursor)
    return raw.removeprefix(CURSOR)


def next_cursor(token: bytes | None) -> str | None:
    """The cursor this API gives for Temporal's page token."""
    return base64.urlsafe_b64encode(CURSOR + token).decode() if token else None


async def bounded_query(
    handle: WorkflowHandle, query: Any, result_type: Any, timeout: timedelta = QUERY_TIMEOUT
) -> Any:
    """A query's answer, or None when no worker answers within `timeout`."""
    try:
        return await handle.query(query, result_type=result_type, rpc_timeout=timeout)
    except RPCError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # Ctrl-C arrived during the call: detach, do not swallow it
            raise asyncio.CancelledError from None
        return None


async def describe_or_none(client: Client, workflow_id: str) -> WorkflowExecutionDescription | None:
    """The workflow's description, or None when there is no such workflow (a malformed id included)."""
    try:
        return await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return None
        raise


class RunReader:
    """Reads runs through a Temporal client and the artifact store."""

    def __init__(self, client: Client, store: ArtifactStore) -> None:
        self.client = client
        self.store = store

    def _handle(self, run: WorkflowExecution, result_type: type | None = None) -> WorkflowHandle:
        return self.client.get_workflow_handle(run.id, run_id=run.run_id, result_type=result_type)

    async def page(self, query: str, limit: int, cursor: str | None) -> tuple[list[WorkflowExecution], str | None]:
        """One page of the runs `query` finds, newest first, and the cursor of the next (BadCursor, or Temporal's
        RPCError, for a cursor it does not take)."""
        listing = self.client.list_workflows(query, page_size=limit, next_page_token=page_token(cursor))
        await listing.fetch_next_page(page_size=limit)
        return list(listing.current_page or []), next_cursor(listing.next_page_token)

    async def view(self, run: WorkflowExecution, urls: RunUrls, progress: dict[str, Any] | None = None) -> RunView:
        """The run as `GET /v1/runs/{id}` shows it; `progress` is its live status, when there is one."""
        progress = progress or {}
        usage = progress.get("usage")
        return RunView(
            id=run.id,
            pipeline=LISTED.get(run.workflow_type, run.workflow_type),  # a pipeline's name, or experiment
            status=STATUS[run.status],
            state=state_of(run),
            summary=await self.text(run) or None,
            started_at=run.start_time,
            closed_at=run.close_time,
            progress=progress or None,
            usage=usage,
            cost_usd=run.typed_search_attributes.get(COST) or (usage or {}).get("estimated_cost_usd"),
            score=run.typed_search_attributes.get(SCORE),
            budget_exhausted=bool(progress.get("budget_exhausted")),
            failures=progress.get("failures", []),
            branch_of=await self.branch_of(run),
            urls=urls,
        )

    async def branch_of(self, run: WorkflowExecution) -> BranchOf | None:
        """The run and iteration a branch started from, from its memo (None for any other run)."""
        try:
            found = await run.memo_value(MEMO_BRANCH, None)
            return BranchOf.model_validate(found) if found else None
        except Exception:  # a memo the codec cannot read
            return None

    async def text(self, run: WorkflowExecution) -> str:
        """The prompt or topic the run was started with, from its memo ("" for runs from before the memo, or
        one the codec cannot read)."""
        try:
            return str(await run.memo_value(MEMO_TEXT, ""))
        except Exception:
            return ""

    async def status(self, run: WorkflowExecution, timeout: timedelta = QUERY_TIMEOUT) -> BaseModel | None:
        """The pipeline's live status (None when no worker answers in time, or the query fails)."""
        spec = spec_of(run.workflow_type)
        if spec is None:
            return None
        try:
            return await bounded_query(self._handle(run), spec.status_query, spec.status_type | None, timeout)
        except WorkflowQueryFailedError:
            return None

    async def result(self, run: WorkflowExecution) -> BaseModel | None:
        """A completed run's result (its pipeline's model), else None."""
        spec = spec_of(run.workflow_type)
        if spec is None or run.status != WorkflowExecutionStatus.COMPLETED:
            return None
        return await self._handle(run, spec.result_type).result()

    async def failure(self, run: WorkflowExecution) -> str | None:
        """What a failed run failed with, else None."""
        if run.status != WorkflowExecutionStatus.FAILED:
            return None
        try:
            await self._handle(run).result()
        except WorkflowFailureError as exc:
            return str(exc.cause or exc)
        return None

    async def job(self, run: WorkflowExecution) -> dict[str, Any]:
        """The job the run was started with (its first history event), as JSON (RPCError when its history
        cannot be read)."""
        async for event in self._handle(run).fetch_history_events(page_size=1):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            decoded = await self.client.data_converter.decode(payloads, [dict]) if payloads else [{}]
            return decoded[0] if isinstance(decoded[0], dict) else {}
        return {}

    async def stored(self, run: WorkflowExecution) -> set[str]:
        """The keys of everything the run has stored so far (`runs/<id>/…`, `worlds/<id>/…`)."""
        spec = spec_of(run.workflow_type)
        return set(await self.store.keys(artifact_key(spec.artifacts, run.id))) if spec else set()

    async def picture(self, run: WorkflowExecution) -> str | None:
        """The artifact that stands for the run, as its pipeline's pictures say (`kit.pictures`): the one its
        result names (an image run's best, a meme), else the last it stored (an image run's latest, a world's icon)."""
        spec = spec_of(run.workflow_type)
        if spec is None:
            return None
        layout = LAYOUTS[spec.pictures]
        if layout.reads_result and (result := await self.result(run)) is not None and (chosen := layout.chosen(result)):
            return chosen
        stored = layout.stored(run.id, await self.stored(run))
        return stored[-1][1] if stored else None

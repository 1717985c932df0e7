"""What the studio reads of a run, kept where it cannot change: the job it was started with (its first
history event), its result, the last answer of its status query once it is closed, and the picture that
stands for it in lists. Kept per Temporal run (workflow id + run id), so a reset or a reused id reads anew."""

from __future__ import annotations

from typing import Any

from cachetools import LRUCache
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError

from activities.run_events import PICTURE
from activities.storage import run_key, world_key
from starter.api.pipelines import pipeline_of_type
from starter.api.service import Service
from starter.common import bounded_query

KEPT = 512  # runs whose job, result and closed state are kept in memory
_jobs: LRUCache[tuple[str, str], dict[str, Any]] = LRUCache(KEPT)
_results: LRUCache[tuple[str, str], Any] = LRUCache(KEPT)
_closed_states: LRUCache[tuple[str, str], Any] = LRUCache(KEPT)


def run_of(described: WorkflowExecutionDescription) -> tuple[str, str]:
    return described.id, described.run_id or ""


async def job_of(svc: Service, described: WorkflowExecutionDescription) -> dict[str, Any]:
    """The job the run was started with, as JSON (empty when its history cannot be read). A copy: callers
    may change it."""
    key = run_of(described)
    if key not in _jobs:
        job: dict[str, Any] = {}
        try:
            handle = svc.client.get_workflow_handle(described.id, run_id=described.run_id)
            async for event in handle.fetch_history_events(page_size=1):
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                decoded = await svc.client.data_converter.decode(payloads, [dict]) if payloads else [{}]
                job = decoded[0] if isinstance(decoded[0], dict) else {}
                break
        except RPCError:
            return {}
        _jobs[key] = job
    return dict(_jobs[key])


async def result_of(svc: Service, described: WorkflowExecutionDescription) -> Any:
    """A completed run's result (its pipeline's model), else None."""
    if described.status != WorkflowExecutionStatus.COMPLETED:
        return None
    key = run_of(described)
    if key not in _results:
        pipe = pipeline_of_type(described.workflow_type)
        handle = svc.client.get_workflow_handle(described.id, run_id=described.run_id, result_type=pipe.result_type)
        _results[key] = await handle.result()
    return _results[key]


async def live_state(svc: Service, described: WorkflowExecutionDescription) -> Any:
    """The pipeline's status query (None when no worker answers in time, or it cannot answer). A closed run's
    answer is kept: asking again would have a worker replay the whole history each time."""
    key = run_of(described)
    if key in _closed_states:
        return _closed_states[key]
    pipe = pipeline_of_type(described.workflow_type)
    handle = svc.client.get_workflow_handle(described.id, run_id=described.run_id)
    try:
        state = await bounded_query(handle, pipe.status_query, pipe.status_type | None)
    except WorkflowQueryFailedError:
        return None
    if state is not None and described.status != WorkflowExecutionStatus.RUNNING:
        _closed_states[key] = state
    return state


async def picture_of(svc: Service, described: WorkflowExecutionDescription) -> str | None:
    """The artifact that stands for the run: an image run's best (or latest) picture, a world's icon, a meme."""
    pipe = pipeline_of_type(described.workflow_type)
    if pipe is None:
        return None
    if pipe.name == "world":
        top = world_key(described.id) + "/"
        names = {k.removeprefix(top): k for k in await svc.store.keys(world_key(described.id))}
        return next((names[n] for want in ("icon.", "background.") for n in sorted(names) if n.startswith(want)), None)
    result = await result_of(svc, described)
    if pipe.name == "meme":
        return result.image.key if result is not None else None
    if result is not None and result.best_iteration is not None:
        return next(it.image.key for it in result.iterations if it.number == result.best_iteration)
    keys = await svc.store.keys(run_key(described.id))
    pictures = sorted(k for k in keys if k.rsplit("/", 1)[-1].startswith("iteration-") and k.endswith(PICTURE))
    return pictures[-1] if pictures else None

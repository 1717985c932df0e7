"""What the studio reads of a run, once per run where it cannot change: the job it was started with (from its
first history event), its result, and the picture that stands for it in lists."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from starter.api.pipelines import pipeline_of_type
from starter.api.service import Service
from starter.common import bounded_query

KEPT = 512  # jobs and results kept in memory (a closed run's never change)


class Kept(OrderedDict):
    """A bounded memo: the newest `KEPT` entries."""

    def keep(self, key: str, value: Any) -> Any:
        self[key] = value
        self.move_to_end(key)
        while len(self) > KEPT:
            self.popitem(last=False)
        return value


_jobs: Kept = Kept()
_results: Kept = Kept()


async def job_of(svc: Service, run_id: str) -> dict[str, Any]:
    """The job the run was started with, as JSON (empty when its history cannot be read)."""
    if run_id in _jobs:
        return _jobs[run_id]
    try:
        async for event in svc.client.get_workflow_handle(run_id).fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            decoded = await svc.client.data_converter.decode(payloads, [dict]) if payloads else [{}]
            value = decoded[0] if isinstance(decoded[0], dict) else {}
            return _jobs.keep(run_id, value)
    except RPCError:
        return {}
    return {}


async def result_of(svc: Service, run_id: str, described: Any) -> Any:
    """A completed run's result (its pipeline's model), else None."""
    if described.status != WorkflowExecutionStatus.COMPLETED:
        return None
    if run_id in _results:
        return _results[run_id]
    pipe = pipeline_of_type(described.workflow_type)
    result = await svc.client.get_workflow_handle(run_id, result_type=pipe.result_type).result()
    return _results.keep(run_id, result)


async def live_state(svc: Service, run_id: str, described: Any) -> Any:
    """The pipeline's live status query (None when no worker answers in time)."""
    pipe = pipeline_of_type(described.workflow_type)
    handle = svc.client.get_workflow_handle(run_id)
    return await bounded_query(handle, pipe.status_query, pipe.status_type | None)


async def picture_of(svc: Service, run_id: str, described: Any) -> str | None:
    """The artifact that stands for the run: an image run's best (or latest) picture, a world's icon, a meme."""
    pipe = pipeline_of_type(described.workflow_type)
    if pipe is None:
        return None
    if pipe.name == "world":
        names = {k.rsplit("/", 1)[-1]: k for k in await svc.store.keys(f"worlds/{run_id}") if k.count("/") == 2}
        found = [key for want in ("icon.", "background.") for name, key in names.items() if name.startswith(want)]
        return found[0] if found else None
    result = await result_of(svc, run_id, described)
    if pipe.name == "meme":
        return result.image.key if result is not None else None
    if result is not None and result.best_iteration is not None:
        return next(it.image.key for it in result.iterations if it.number == result.best_iteration)
    keys = await svc.store.keys(f"runs/{run_id}")
    pictures = sorted(k for k in keys if k.rsplit("/", 1)[-1].startswith("iteration-"))
    return pictures[-1] if pictures else None

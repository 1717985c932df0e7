"""How the studio reads runs: the run reader (`kit.run_reading`, as the API reads them), keeping what
cannot change: the job a run was started with, its result and the last answer of its status query once it is
closed. Kept per Temporal run (workflow id + run id), so a reset or a reused id reads anew."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cachetools import LRUCache
from pydantic import BaseModel
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError

from kit.run_reading import QUERY_TIMEOUT, RunReader
from starter.api.service import Service

KEPT = 512  # runs whose job, result and closed state are kept in memory
_jobs: LRUCache[tuple[str, str], dict[str, Any]] = LRUCache(KEPT)
_results: LRUCache[tuple[str, str], Any] = LRUCache(KEPT)
_closed_states: LRUCache[tuple[str, str], Any] = LRUCache(KEPT)


def run_of(run: WorkflowExecution) -> tuple[str, str]:
    return run.id, run.run_id or ""


class KeptRunReader(RunReader):
    """The run reader, with what cannot change kept in memory."""

    async def job(self, run: WorkflowExecution) -> dict[str, Any]:
        """A copy (callers may change it); empty when the run's history cannot be read (not kept)."""
        key = run_of(run)
        if key not in _jobs:
            try:
                _jobs[key] = await super().job(run)
            except RPCError:
                return {}
        return dict(_jobs[key])

    async def result(self, run: WorkflowExecution) -> BaseModel | None:
        key = run_of(run)
        if key not in _results:
            if (result := await super().result(run)) is None:
                return None
            _results[key] = result
        return _results[key]

    async def status(self, run: WorkflowExecution, timeout: timedelta = QUERY_TIMEOUT) -> BaseModel | None:
        """A closed run's answer is kept: asking again would have a worker replay the whole history each time."""
        key = run_of(run)
        if key in _closed_states:
            return _closed_states[key]
        state = await super().status(run, timeout)
        if state is not None and run.status != WorkflowExecutionStatus.RUNNING:
            _closed_states[key] = state
        return state


def studio_runs(svc: Service) -> KeptRunReader:
    return KeptRunReader(svc.client, svc.store)

"""What the event feed finds new in an experiment (`activities.run_events` looks; this reads the experiment): each
cell that finished since the last look, once, in the order they finished (`experiment.cell.completed`: its
status, score, cost, run and best picture), and when the experiment completes `experiment.completed` with its
counts, dollars and report. Read only, through the experiment's queries and its result."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError

from models.experiment import CellOutcome, ExperimentResult, FinishedCells, status_of
from models.workflow_interfaces import ExperimentWorkflow

QUERY_TIMEOUT = timedelta(seconds=3)
LOOK_MOST = 10  # `finished_since` answers a look asks at most (each a few hundred cells)


async def _finished(client: Client, described: WorkflowExecutionDescription, after: int) -> FinishedCells | None:
    handle = client.get_workflow_handle(described.id, run_id=described.run_id)
    try:
        return await handle.query(
            ExperimentWorkflow.finished_since, after, result_type=FinishedCells | None, rpc_timeout=QUERY_TIMEOUT
        )
    except (RPCError, WorkflowQueryFailedError):  # no worker answered this time: the next look asks again
        return None


def _cell(look: Any, variants: list[str], outcome: CellOutcome) -> None:
    fields = outcome.model_dump(exclude={"picture", "order", "cell"})
    picture = look.link(outcome.picture) if outcome.picture else None
    look.add("experiment.cell.completed", cell=fields | {"variant_name": variants[outcome.variant]}, image=picture)
    look.seen.cells = max(look.seen.cells, outcome.order)


async def look_at_experiment(
    client: Client, described: WorkflowExecutionDescription, look: Any, closed: bool
) -> dict[str, Any]:
    """Add the experiment's new events to `look`; what its terminal event says (once it has closed)."""
    if described.status == WorkflowExecutionStatus.COMPLETED:
        result = await client.get_workflow_handle_for(ExperimentWorkflow.run, described.id).result()
        variants = [v.name for v in result.plan.variants]
        for outcome in sorted((o for o in result.plan.outcomes if o.order > look.seen.cells), key=lambda o: o.order):
            _cell(look, variants, outcome)
        look.add("experiment.completed", **_completed(result))
        return {"state": result.state}
    for _ in range(LOOK_MOST):
        finished = await _finished(client, described, look.seen.cells)
        if finished is None or not finished.cells:
            break
        for outcome in finished.cells:
            _cell(look, finished.variants, outcome)
    return {"status": described.status.name.lower()} if closed else {}


def _completed(result: ExperimentResult) -> dict[str, Any]:
    grid = status_of(result.plan, {o.cell: o for o in result.plan.outcomes}, result.state)
    report = result.report
    links = {"report": {"key": report.report.key}, "csv": {"key": report.csv.key}} if report else {}
    return {"counts": grid.counts, "cells": grid.cells, "spent_usd": grid.spent_usd, **links}

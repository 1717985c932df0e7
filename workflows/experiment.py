"""An experiment: cells (row × variant × repeat) → one child run of the pipeline each, at most `max_parallel` at
once, within one dollar budget → the report (an activity) → done. Every `continue_after` cells started it drains
its running cells and continues as new carrying the compact outcomes, so no history nears Temporal's limits.

Cells run at the experiment's priority (after interactive runs), fair by tenant. A cell is started only when
its budget fits what is left beside what running cells may still spend; when it cannot fit even with nothing
running, it is refused. A cancel cancels every running cell and marks the rest cancelled; `rerun_failed` puts
the failed and refused cells back as their next attempt (after the end, the API starts a new run of the same id
from the result). A cell's child id names the experiment, the cell and the attempt: a start retried or
replayed never makes a second run of it."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.common import Priority, WorkflowIDReusePolicy
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError, is_cancelled_exception
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from models.experiment import (
        WRITE_REPORT,
        Cell,
        ExperimentPlan,
        ExperimentResult,
        ExperimentState,
        ExperimentStatus,
        FinishedCells,
        ReportRefs,
        Rerun,
        cell_job,
        child_id,
        completed,
    )
    from models.settings import WORKFLOW_QUEUE
    from models.text import shorten
    from workflows import console
    from workflows.experiment_cells import Grid
    from workflows.inputs import parse_input
    from workflows.options import storage_call

REPORT_MINUTES = 5  # one attempt of the report: thousands of cells bootstrapped in numpy, and three puts


@workflow.defn
class ExperimentWorkflow:
    def __init__(self) -> None:
        self._grid: Grid | None = None  # once the plan is parsed
        self._state: ExperimentState = "running"
        self._running: dict[int, asyncio.Task] = {}  # cell → the task that runs its child
        self._started = 0  # cells this run started (it continues as new after `continue_after`)
        self._settled = 0  # cells this run saw finish: what waits on a running cell watch it

    @workflow.query
    def status(self) -> ExperimentStatus | None:
        """The grid as it stands: counts, dollars, every running and finished cell (a copy)."""
        return None if self._grid is None else self._grid.status(self._state)

    @workflow.query
    def finished_since(self, after: int) -> FinishedCells | None:
        """The cells that finished after the `after`-th, in the order they finished (the event feed's)."""
        return None if self._grid is None else self._grid.finished_since(after)

    @workflow.update
    def rerun_failed(self) -> Rerun:
        """Start every failed and refused cell again, as its next attempt."""
        assert self._grid is not None  # the validator refused it otherwise
        return Rerun(cells=self._grid.rerun_failed())

    @rerun_failed.validator
    def validate_rerun_failed(self) -> None:
        if self._grid is None:
            raise ValueError("the experiment has not started yet")
        if self._state not in ("running", "continuing", "reporting"):
            raise ValueError(f"the experiment is {self._state}")

    @workflow.run
    async def run(self, raw: dict[str, Any]) -> ExperimentResult:
        grid = self._grid = Grid(parse_input(ExperimentPlan, raw), workflow.info().workflow_id)
        try:
            while True:
                if not await self._run_cells(grid):
                    break  # time to continue as new: nothing runs now
                self._state = "reporting"
                grid.plan.report = await self._report(grid)
                if grid.peek() is None:  # a rerun asked for while it reported goes round again
                    self._state = "completed"
                    break
                self._state = "running"
        except BaseException as err:
            if not is_cancelled_exception(err):
                raise
            await self._cancel(grid)
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._state == "continuing":
            workflow.continue_as_new(grid.carried())
        console.set_search_attributes(state="COMPLETED", cost_usd=grid.plan.spent_usd)
        return ExperimentResult(state="completed", plan=grid.carried(), report=grid.plan.report)

    # ── cells ────────────────────────────────────────────────────────────────────────────────────────

    async def _run_cells(self, grid: Grid) -> bool:
        """Start cells until none is pending and none runs (True), or until it is time to continue as new and
        the running ones have finished (False)."""
        while True:
            await workflow.wait_condition(lambda: len(self._running) < grid.plan.max_parallel)
            cell = grid.peek()
            if cell is None:
                if not self._running:
                    return True
                await self._a_cell_settles(lambda: grid.peek() is not None)
                continue
            if self._started >= grid.plan.continue_after or workflow.info().is_continue_as_new_suggested():
                self._state = "continuing"
                await workflow.wait_condition(lambda: not self._running)
                return False
            verdict = grid.verdict(cell)
            if verdict == "refuse":
                grid.refuse(cell)
            elif verdict == "wait":
                await self._a_cell_settles()
            else:
                self._start(grid, cell)

    async def _a_cell_settles(self, or_else: Any = lambda: False) -> None:
        settled = self._settled
        await workflow.wait_condition(lambda: self._settled != settled or or_else())

    def _start(self, grid: Grid, cell: Cell) -> None:
        cell_id = child_id(grid.experiment_id, cell, grid.attempt(cell))
        grid.start(cell, cell_id)
        self._started += 1
        self._running[cell.index] = asyncio.create_task(self._cell(grid, cell, cell_id))

    async def _cell(self, grid: Grid, cell: Cell, cell_id: str) -> None:
        """One cell's child run, to its end; its outcome into the grid however it ends."""
        plan = grid.plan
        job = cell_job(plan, cell)
        began = workflow.now()
        try:
            result = await workflow.execute_child_workflow(
                plan.workflow_type,
                job,
                id=cell_id,
                task_queue=WORKFLOW_QUEUE,
                result_type=dict,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                priority=Priority(priority_key=plan.priority_key, fairness_key=plan.fairness_key or grid.experiment_id),
                static_summary=f"{plan.variants[cell.variant].name} · {shorten(plan.label(cell.row), 60)}",
                search_attributes=console.for_child(plan.pipeline),
            )
            fields = completed(plan, cell, job, result)
            if self._state == "cancelling":  # it ended with what it had made when the cancel reached it
                fields["status"] = "cancelled"
        except (asyncio.CancelledError, ChildWorkflowError, WorkflowAlreadyStartedError) as err:
            if is_cancelled_exception(err):
                fields = {"status": "cancelled"}
            else:
                cause = err.cause if isinstance(err, ChildWorkflowError) and err.cause else err
                fields = {"status": "failed", "error": shorten(str(cause), 300)}
        grid.finish(cell, fields, (workflow.now() - began).total_seconds())
        del self._running[cell.index]
        self._settled += 1
        console.set_search_attributes(cost_usd=plan.spent_usd)
        console.show(self._details(grid))

    def _details(self, grid: Grid) -> str:
        plan = grid.plan
        budget = f" of ${plan.max_cost_usd:.2f}" if plan.max_cost_usd is not None else ""
        return f"**{plan.finished}** cells finished of {plan.cells} · ${plan.spent_usd:.4f}{budget} spent"

    # ── the end ──────────────────────────────────────────────────────────────────────────────────────

    async def _report(self, grid: Grid) -> ReportRefs:
        # by name: the report's module imports numpy, which stays out of the workflow sandbox
        return await workflow.execute_activity(
            WRITE_REPORT,
            grid.report_request(),
            result_type=ReportRefs,
            **storage_call(f"report · {grid.plan.finished} cells", minutes=REPORT_MINUTES),
        )

    async def _cancel(self, grid: Grid) -> None:
        """Cancel every running cell and wait for each to end; the rest never start; then the report of what
        was done."""
        self._state = "cancelling"
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        grid.cancel_pending()
        self._state = "cancelled"
        grid.plan.report = await self._report(grid)
        console.set_search_attributes(state="CANCELLED", cost_usd=grid.plan.spent_usd)

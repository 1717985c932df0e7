"""An experiment's cells as its workflow holds them (`Grid`): each cell's outcome, which are pending, which run and
what they reserve, the dollars spent, and the grid as the `status` query shows it. Pure bookkeeping: the workflow
(`workflows.experiment`) starts, waits and decides; no I/O here."""

from __future__ import annotations

from typing import Literal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.experiment import (
        Cell,
        CellOutcome,
        ExperimentPlan,
        ExperimentState,
        ExperimentStatus,
        FinishedCells,
        ReportRequest,
        status_of,
    )

FINISHED_PER_ANSWER = 500  # cells a `finished_since` answer lists at most (the event feed asks again)
BUDGET_EPSILON = 1e-9

Verdict = Literal["start", "wait", "refuse"]


class Grid:
    def __init__(self, plan: ExperimentPlan, experiment_id: str) -> None:
        self.plan = plan
        self.experiment_id = experiment_id
        self.outcomes: dict[int, CellOutcome] = {o.cell: o for o in plan.outcomes}
        self.reserved: dict[int, float] = {}  # running cell → its dollar budget
        self._scan = 0  # every cell below it has left pending

    # --- which cell next -------------------------------------------------------------------------------

    def peek(self) -> Cell | None:
        """The first pending cell, in cell order (rows first, so early rows finish under every variant)."""
        while self._scan < self.plan.cells:
            outcome = self.outcomes.get(self._scan)
            if outcome is None or outcome.status == "pending":
                return self.plan.cell(self._scan)
            self._scan += 1
        return None

    def verdict(self, cell: Cell) -> Verdict:
        """Whether the cell's budget fits the experiment's now ("start"), once running cells settle ("wait"),
        or not even with nothing running ("refuse")."""
        if self.plan.max_cost_usd is None:
            return "start"
        if (
            self.plan.spent_usd + sum(self.reserved.values()) + self.budget(cell)
            <= self.plan.max_cost_usd + BUDGET_EPSILON
        ):
            return "start"
        return "wait" if self.reserved else "refuse"

    def budget(self, cell: Cell) -> float:
        cost = self.plan.variants[cell.variant].cost
        return cost.max_usd if cost is not None else 0.0

    def attempt(self, cell: Cell) -> int:
        outcome = self.outcomes.get(cell.index)
        return outcome.attempt if outcome is not None else 1

    # --- a cell's life ---------------------------------------------------------------------------------

    def start(self, cell: Cell, child_id: str) -> None:
        self.outcomes[cell.index] = self._outcome(cell, status="running", child_id=child_id)
        self.reserved[cell.index] = self.budget(cell)

    def finish(self, cell: Cell, fields: dict, seconds: float) -> CellOutcome:
        """The cell's outcome from its child's ending; what it spent counts (its whole budget when unknown)."""
        reserved = self.reserved.pop(cell.index, 0.0)
        running = self.outcomes[cell.index]
        spent = fields.get("cost_usd")
        self.plan.spent_usd += reserved if spent is None else spent
        outcome = running.model_copy(update=fields | {"seconds": round(seconds, 3), "order": self._finished()})
        self.outcomes[cell.index] = outcome
        return outcome

    def refuse(self, cell: Cell) -> None:
        spent = f"${self.plan.spent_usd:.4f} of the experiment's ${self.plan.max_cost_usd:.4f} spent"
        error = f"budget: {spent}; this cell may cost ${self.budget(cell):.4f}"
        self.outcomes[cell.index] = self._outcome(cell, status="refused", error=error, order=self._finished())

    def cancel_pending(self) -> None:
        """Every cell not started: cancelled (no event: it never ran)."""
        while (cell := self.peek()) is not None:
            self.outcomes[cell.index] = self._outcome(cell, status="cancelled")

    def rerun_failed(self) -> int:
        """Failed and refused cells back to pending as their next attempt (`ExperimentPlan.rerun_failed`)."""
        self.plan.outcomes = list(self.outcomes.values())
        count = self.plan.rerun_failed()
        self.outcomes = {o.cell: o for o in self.plan.outcomes}
        self._scan = 0
        return count

    def _outcome(self, cell: Cell, **fields) -> CellOutcome:
        return CellOutcome(
            cell=cell.index,
            row=cell.row,
            variant=cell.variant,
            repeat=cell.repeat,
            attempt=self.attempt(cell),
            **fields,
        )

    def _finished(self) -> int:
        self.plan.finished += 1
        return self.plan.finished

    # --- what it shows and carries ---------------------------------------------------------------------

    def carried(self) -> ExperimentPlan:
        """The plan with every outcome, as the next run (or a rerun after the end) starts from it."""
        return self.plan.model_copy(update={"outcomes": [self.outcomes[i] for i in sorted(self.outcomes)]})

    def status(self, state: ExperimentState) -> ExperimentStatus:
        return status_of(self.plan, self.outcomes, state, sum(self.reserved.values()))

    def finished_since(self, after: int) -> FinishedCells:
        """The cells that finished after the `after`-th, in the order they finished (at most a few hundred)."""
        later = sorted((o for o in self.outcomes.values() if o.order > after), key=lambda o: o.order)
        return FinishedCells(variants=[v.name for v in self.plan.variants], cells=later[:FINISHED_PER_ANSWER])

    def report_request(self) -> ReportRequest:
        return self.status("reporting").report_request(self.experiment_id)

"""Experiments: one pipeline's job run over a dataset's rows under named variants, each row × variant × repeat a
cell, each cell one child run (`workflows.experiment`). What a client asks for (`ExperimentRequest`), what the
workflow is started with and carries (`ExperimentPlan`), a cell's compact outcome, the live grid and the result.
The report's models are `models.experiment_report`.

A cell's job is the plan's `base`, then its row's fields, then its variant's `set`, then what the server fixes
(`fixed`, the variant's dollar budget): each a dotted path into the job (`models.image`, `options.quality`).
Pure data and pure functions: the workflow builds each cell's job and reads each child's result with them."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, field_validator, model_validator

from models.api import EventType, Pipeline
from models.artifacts import ArtifactRef
from models.image import ImageJob
from models.meme import MemeJob
from models.usage import CostLimit

EXPERIMENT_PIPELINE = "experiment"  # how runs lists, events and the API name an experiment
EXPERIMENT_TYPE = "ExperimentWorkflow"  # its workflow type (`workflows.experiment`)
MAX_ROWS = 5000
MAX_VARIANTS = 32
MAX_REPEAT = 10
MAX_CELLS = 10_000
MAX_PARALLEL = 64
CONTINUE_AFTER = 500  # cells a workflow run starts before it continues as new (history stays well under its limits)
ROW_LABEL = "id"  # a row's own name in the report (not a field of the job)
# the report's activity, called by name: the workflow does not import numpy (`activities.experiment_report`)
WRITE_REPORT = "write_experiment_report"

CellStatus = Literal["pending", "running", "completed", "failed", "refused", "cancelled"]
ENDED: tuple[CellStatus, ...] = ("completed", "failed", "refused", "cancelled")
RERUN: tuple[CellStatus, ...] = ("failed", "refused")  # what `rerun-failed` starts again
VariantName = Annotated[str, StringConstraints(pattern=r"^\S[^\x00-\x1f]{0,159}$")]  # a matrix's: `a=1,b=x`
Path = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")]


class Variant(BaseModel):
    """One way of running every row: the job fields it sets, each by a dotted path (`{"models.image": "…"}`)."""

    model_config = ConfigDict(extra="forbid")

    name: VariantName
    set: dict[Path, Any] = Field(default_factory=dict, max_length=64)


class Dataset(BaseModel):
    """The rows (each a job's own fields, e.g. `prompt`, `references`; `id` names the row) or a saved
    dataset's id (`POST /v1/datasets`)."""

    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=MAX_ROWS)
    id: str | None = Field(default=None, pattern=r"^ds-[0-9a-f]{16}$")

    @model_validator(mode="after")
    def _one_of(self) -> Dataset:
        if (self.rows is None) == (self.id is None):
            raise ValueError("give either rows or the id of a saved dataset")
        return self


class ExperimentRequest(BaseModel):
    """`POST /v1/experiments`: a pipeline's `base` job run over the dataset's rows under each variant, `repeat`
    times each, at most `max_parallel` cells at once, within `max_cost_usd` for the whole experiment."""

    model_config = ConfigDict(extra="forbid")

    pipeline: Pipeline
    dataset: Dataset
    base: dict[str, Any] = Field(default_factory=dict)  # the job every cell starts from (`max_cost_usd`: each cell's)
    variants: list[Variant] = Field(min_length=1, max_length=MAX_VARIANTS)
    baseline: str | None = None  # the variant the others are compared with (None: the first)
    repeat: int = Field(default=1, ge=1, le=MAX_REPEAT)  # runs of each row × variant (a per-row interval needs 2+)
    max_parallel: int = Field(default=8, ge=1, le=MAX_PARALLEL)
    max_cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)  # the whole experiment's budget
    webhook: HttpUrl | None = None  # the experiment's events, signed with the tenant's secret
    webhook_events: list[EventType] | None = None

    @field_validator("pipeline")
    @classmethod
    def _scored(cls, pipeline: str) -> str:
        if pipeline not in SCORED_BY:
            raise ValueError(f"an experiment's cells are runs of {', '.join(SCORED_BY)}, not {pipeline}")
        return pipeline

    @field_validator("variants")
    @classmethod
    def _distinct(cls, variants: list[Variant]) -> list[Variant]:
        names = [v.name for v in variants]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"variant names must differ: {', '.join(twice)} given twice")
        return variants

    @field_validator("baseline")
    @classmethod
    def _a_variant(cls, baseline: str | None, info: Any) -> str | None:
        names = [v.name for v in info.data.get("variants") or []]
        if baseline is not None and names and baseline not in names:
            raise ValueError(f"not a variant: one of {', '.join(names)}")
        return baseline

    def baseline_index(self) -> int:
        return next((n for n, v in enumerate(self.variants) if v.name == self.baseline), 0)


# --- what the workflow runs ------------------------------------------------------------------------------


class PlannedVariant(BaseModel):
    name: str
    set: dict[str, Any] = Field(default_factory=dict)
    cost: CostLimit | None = None  # each of its cells' dollar budget, quoted by the server (None: none)


@dataclass(frozen=True)
class Cell:
    """One row × variant × repeat, numbered row-major: `index = (row · variants + variant) · repeat + k`."""

    index: int
    row: int
    variant: int
    repeat: int


class CellOutcome(BaseModel):
    """A cell as it stands: compact, so thousands fit the state an experiment carries across continue-as-new."""

    cell: int
    row: int
    variant: int
    repeat: int = 0
    attempt: int = 1  # `rerun-failed` starts a failed or refused cell again as its next attempt
    status: CellStatus = "pending"
    score: float | None = None  # 0–100 (a meme's 0–1 score × 100)
    passed: bool | None = None  # the score reached the cell's own threshold (a world has none)
    cost_usd: float | None = None  # None: unknown (a failed cell; the experiment counts its whole budget)
    tokens: int | None = None
    seconds: float | None = None
    child_id: str | None = None  # the cell's run: `GET /v1/runs/{child_id}`
    picture: str | None = None  # the artifact key of its best picture
    error: str | None = None
    order: int = 0  # its place among the finished cells (1, 2, …): the event feed follows it


class ReportRefs(BaseModel):
    """Where a finished experiment's report is stored: the report, and every cell as CSV and JSON lines."""

    report: ArtifactRef
    csv: ArtifactRef
    jsonl: ArtifactRef


class ExperimentPlan(BaseModel):
    """Input of ExperimentWorkflow, validated and priced by the API or CLI; also what it carries when it
    continues as new, and what a run started again by `rerun-failed` starts from."""

    pipeline: str
    workflow_type: str  # the pipeline's workflow: each cell is one child run of it
    text_field: str  # the job's prompt or topic: a row's label when it has no `id`
    cost_path: str = "cost"  # where a cell's dollar budget goes in its job (a world's: `budget.cost`)
    priority_key: int = 5  # its cells' task-queue priority (`models.priority`: after interactive runs)
    fairness_key: str = ""  # what its cells share fairly under: the tenant ("": the experiment's own id)
    base: dict[str, Any] = Field(default_factory=dict)
    fixed: dict[str, Any] = Field(default_factory=dict)  # paths the server sets on every cell (a meme's blocked words)
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ROWS)
    variants: list[PlannedVariant] = Field(min_length=1, max_length=MAX_VARIANTS)
    baseline: int = 0
    repeat: int = Field(default=1, ge=1, le=MAX_REPEAT)
    max_parallel: int = Field(default=8, ge=1, le=MAX_PARALLEL)
    max_cost_usd: float | None = None
    continue_after: int = Field(default=CONTINUE_AFTER, ge=1)
    outcomes: list[CellOutcome] = Field(default_factory=list)  # carried: every cell that has one
    finished: int = 0  # cells finished so far, reruns included (the next gets `finished + 1` as its order)
    spent_usd: float = 0.0
    report: ReportRefs | None = None
    runs: int = 1  # the runs of this workflow id so far (a rerun after the end starts the next)

    @property
    def cells(self) -> int:
        return len(self.rows) * len(self.variants) * self.repeat

    def cell(self, index: int) -> Cell:
        rest, k = divmod(index, self.repeat)
        row, variant = divmod(rest, len(self.variants))
        return Cell(index, row, variant, k)

    def label(self, row: int) -> str:
        """How the report names a row: its `id`, else its prompt or topic, else its number."""
        values = self.rows[row]
        text = values.get(ROW_LABEL) or values.get(self.text_field) or self.base.get(self.text_field)
        return " ".join(str(text).split())[:120] if text else f"row {row}"

    def rerun_failed(self) -> int:
        """Every failed or refused cell back to pending as its next attempt; how many."""
        again = [o for o in self.outcomes if o.status in RERUN]
        for n, outcome in enumerate(self.outcomes):
            if outcome.status in RERUN:
                self.outcomes[n] = CellOutcome(
                    cell=outcome.cell,
                    row=outcome.row,
                    variant=outcome.variant,
                    repeat=outcome.repeat,
                    attempt=outcome.attempt + 1,
                )
        return len(again)


def child_id(experiment_id: str, cell: Cell, attempt: int) -> str:
    """The cell's run: derived from the experiment, the cell and its attempt, so a start that is retried or
    replayed never makes a second run of it."""
    return f"{experiment_id}~r{cell.row}-v{cell.variant}-k{cell.repeat}-a{attempt}"


def set_path(job: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path in a job (the dicts on the way made when missing)."""
    *parents, name = path.split(".")
    here = job
    for part in parents:
        if not isinstance(here.get(part), dict):
            here[part] = {}
        here = here[part]
    here[name] = copy.deepcopy(value)


def cell_job(plan: ExperimentPlan, cell: Cell) -> dict[str, Any]:
    """The cell's job: the base, its row, its variant, what the server fixes, and its dollar budget."""
    job = copy.deepcopy(plan.base)
    variant = plan.variants[cell.variant]
    row = {path: value for path, value in plan.rows[cell.row].items() if path != ROW_LABEL}
    for layer in (row, variant.set, plan.fixed):
        for path, value in layer.items():
            set_path(job, path, value)
    if variant.cost is not None:
        set_path(job, plan.cost_path, variant.cost.model_dump(mode="json"))
    return job


# --- a child's result, read the same way for every pipeline ---------------------------------------------


def _image(result: dict[str, Any]) -> tuple[float | None, str | None]:
    best = result.get("best_iteration")
    picture = next((it["image"]["key"] for it in result.get("iterations", []) if it.get("number") == best), None)
    return result.get("final_score"), picture


def _meme(result: dict[str, Any]) -> tuple[float | None, str | None]:
    score = result.get("score")
    return (None if score is None else round(score * 100, 4)), (result.get("image") or {}).get("key")


def _world(result: dict[str, Any]) -> tuple[float | None, str | None]:
    return None, (result.get("gallery") or {}).get("key")


# score (0–100) and best picture of each pipeline an experiment can run (a cell is one run of one row's job)
SCORED_BY = {"image": _image, "meme": _meme, "world": _world}
# the job's pass mark, its scale, and its default when a job leaves it out
THRESHOLD = {
    "image": ("threshold", 1.0, ImageJob.model_fields["threshold"].default),
    "meme": ("target_score", 100.0, MemeJob.model_fields["target_score"].default),
}


def completed(plan: ExperimentPlan, cell: Cell, job: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The fields of a completed cell's outcome from its child's result (as JSON)."""
    score, picture = SCORED_BY[plan.pipeline](result)
    usage = result.get("usage") or (result.get("status") or {}).get("usage") or {}
    passed = None
    if score is not None and plan.pipeline in THRESHOLD:
        field, scale, default = THRESHOLD[plan.pipeline]
        passed = score >= float(job.get(field, default)) * scale
    tokens = (usage.get("input_tokens") or 0) + (usage.get("output_tokens") or 0)
    return {
        "status": "completed",
        "score": score,
        "passed": passed,
        "cost_usd": usage.get("estimated_cost_usd"),
        "tokens": tokens,
        "picture": picture,
    }


# --- the live grid and the result ------------------------------------------------------------------------

ExperimentState = Literal["running", "continuing", "reporting", "completed", "cancelling", "cancelled"]


class ExperimentStatus(BaseModel):
    """What ExperimentWorkflow's `status` query answers: the grid as it stands (pending cells left out)."""

    state: ExperimentState
    pipeline: str
    variants: list[str]
    baseline: str
    rows: int
    repeat: int
    cells: int
    counts: dict[str, int]  # cells per status, pending included
    spent_usd: float
    reserved_usd: float  # what running cells may still spend (their budgets)
    max_cost_usd: float | None
    labels: list[str]  # each row's label (its `id`, else its prompt or topic)
    outcomes: list[CellOutcome]  # running and finished cells, in cell order
    report: ReportRefs | None = None

    def report_request(self, experiment_id: str) -> ReportRequest:
        return ReportRequest(
            experiment_id=experiment_id,
            pipeline=self.pipeline,
            variants=self.variants,
            baseline=self.variants.index(self.baseline),
            labels=self.labels,
            repeat=self.repeat,
            outcomes=self.outcomes,
        )


class ReportRequest(BaseModel):
    """What a report is computed from: the grid's names and every cell's outcome."""

    experiment_id: str
    pipeline: str
    variants: list[str]
    baseline: int = 0
    labels: list[str]  # each row's label
    repeat: int = 1
    outcomes: list[CellOutcome]


def status_of(
    plan: ExperimentPlan, outcomes: dict[int, CellOutcome], state: ExperimentState, reserved_usd: float = 0.0
) -> ExperimentStatus:
    """The grid as it stands (`outcomes` by cell; a cell without one is pending)."""
    counts = dict.fromkeys(("pending", "running", *ENDED), 0)
    for outcome in outcomes.values():
        counts[outcome.status] += 1
    counts["pending"] += plan.cells - len(outcomes)
    return ExperimentStatus(
        state=state,
        pipeline=plan.pipeline,
        variants=[v.name for v in plan.variants],
        baseline=plan.variants[plan.baseline].name,
        rows=len(plan.rows),
        repeat=plan.repeat,
        cells=plan.cells,
        counts=counts,
        spent_usd=round(plan.spent_usd, 6),
        reserved_usd=round(reserved_usd, 6),
        max_cost_usd=plan.max_cost_usd,
        labels=[plan.label(row) for row in range(len(plan.rows))],
        outcomes=[o for _, o in sorted(outcomes.items()) if o.status != "pending"],
        report=plan.report,
    )


class FinishedCells(BaseModel):
    """What ExperimentWorkflow's `finished_since` query answers: cells in the order they finished, at most a
    few hundred (ask again from the last one's `order`), and the variants' names."""

    variants: list[str]
    cells: list[CellOutcome]


class Rerun(BaseModel):
    """What `rerun-failed` did: how many failed or refused cells it started again."""

    cells: int


class ExperimentResult(BaseModel):
    """Output of ExperimentWorkflow: the plan with every outcome (what a rerun starts from) and the report."""

    state: ExperimentState
    plan: ExperimentPlan
    report: ReportRefs | None = None

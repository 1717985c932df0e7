"""What the HTTP API answers about experiments (`/v1/experiments`) beside the request itself
(`models.experiment.ExperimentRequest`). The Studio's experiment page reads the same models.

`ExperimentView` is the grid as it stands: every running and finished cell (`CellView`, with links to its run
and its best picture; pending cells are left out and counted), the counts per status, the dollars, and the
report (`models.experiment_report`: live while the experiment runs, the stored one once it has ended)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from models.api import RunStatus, RunUrls
from models.experiment import CellOutcome, ExperimentState
from models.experiment_report import ExperimentReport
from models.ratings import Leaderboard


class ExperimentUrls(RunUrls):
    """`run`: the experiment (`/v1/experiments/{id}`); `result`: its report (JSON); the exports; rerun-failed."""

    rerun_failed: str
    report_csv: str
    report_jsonl: str


class ExperimentCreated(BaseModel):
    """202 to `POST /v1/experiments` (and to a create with `vary`: a matrix is an experiment)."""

    id: str
    pipeline: str  # the pipeline its cells run
    status: RunStatus
    cells: int
    urls: ExperimentUrls


class CellView(CellOutcome):
    """A cell as the API shows it: its outcome, its variant's name, links to its run and its best picture."""

    variant_name: str
    run_url: str | None = None  # `GET /v1/runs/{child_id}`
    picture_url: str | None = None  # the picture itself (`?width=` for a thumbnail)


class ExperimentView(BaseModel):
    id: str
    status: RunStatus  # Temporal's: running until the experiment closes
    state: ExperimentState  # the experiment's own: running, reporting, completed, cancelling, cancelled
    pipeline: str
    variants: list[str]
    baseline: str
    rows: int
    repeat: int
    cells: int
    counts: dict[str, int]  # cells per status: pending, running, completed, failed, refused, cancelled
    spent_usd: float
    reserved_usd: float
    max_cost_usd: float | None
    labels: list[str]  # each row's label (its `id`, else its prompt or topic)
    outcomes: list[CellView]  # running and finished cells, in cell order (row, then variant, then repeat)
    report: ExperimentReport | None = None  # the judge's ranking: its scores per variant
    people: Leaderboard | None = None  # people's, beside it: the variants by their votes and stars (`/v1/leaderboard`)
    started_at: datetime | None = None
    closed_at: datetime | None = None
    urls: ExperimentUrls


class RerunStarted(BaseModel):
    """202 to `POST /v1/experiments/{id}/rerun-failed`: how many failed or refused cells start again."""

    id: str
    cells: int
    urls: ExperimentUrls

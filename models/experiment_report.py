"""An experiment's report, as the API, the CLI and the Studio show it and `experiments/<id>/report.json` stores
it (computed by `activities.experiment_report`, never in the workflow).

The method, once: every interval is a 95 % percentile bootstrap of a mean with `RESAMPLES` resamples
(`kit.stats`: resamples drawn as multinomial counts with numpy's default generator), seeded per statistic so the
same cells always give the same report. A variant's score is the mean of its completed cells' scores. A
comparison pairs rows: each row's mean score under the variant minus under the baseline (rows scored under
both), resampled by row. A row's difference pairs its repeats (repeat k under the variant with repeat k under
the baseline) and has an interval only with two pairs or more. A regression is an interval entirely below 0."""

from __future__ import annotations

from pydantic import BaseModel, Field

RESAMPLES = 2000
CONFIDENCE = 0.95
METHOD = (
    "95% percentile bootstrap of the mean, 2000 resamples (multinomial counts, numpy default_rng), seeded per "
    "statistic with crc32 of its name; comparisons paired by row, row differences paired by repeat; a "
    "regression is an interval entirely below 0"
)


class Estimate(BaseModel):
    """A mean with its 95 % bootstrap interval (None where there is nothing to estimate) and its count."""

    mean: float | None = None
    low: float | None = None
    high: float | None = None
    count: int = 0


class VariantSummary(BaseModel):
    """One variant over every row: how its cells ended, its score, pass rate, cost, tokens and time."""

    name: str
    cells: int
    completed: int = 0
    failed: int = 0
    refused: int = 0
    cancelled: int = 0
    pending: int = 0  # not finished (a live report)
    score: Estimate = Field(default_factory=Estimate)
    pass_rate: float | None = None  # the share of scored cells that reached their threshold
    cost_usd: float = 0.0
    tokens: int = 0
    seconds_p50: float | None = None
    seconds_p95: float | None = None


class Comparison(BaseModel):
    """A variant against the baseline, paired by row: the mean of the rows' differences and its interval."""

    variant: str
    baseline: str
    difference: Estimate = Field(default_factory=Estimate)
    regression: bool = False


class RowDifference(BaseModel):
    """One row under one variant against the baseline (paired by repeat)."""

    row: int
    label: str
    variant: str
    difference: Estimate = Field(default_factory=Estimate)
    regression: bool = False


class ExperimentReport(BaseModel):
    experiment_id: str
    pipeline: str
    baseline: str
    method: str = METHOD
    resamples: int = RESAMPLES
    confidence: float = CONFIDENCE
    cells: int
    finished: int
    variants: list[VariantSummary]
    comparisons: list[Comparison]  # every variant but the baseline
    rows: list[RowDifference]  # every row × variant but the baseline, sortable by difference
    regressions: list[RowDifference]  # the rows whose interval is entirely below 0, worst first

"""An experiment's report (`models.experiment_report`, whose docstring gives the method), computed from its cells'
outcomes with `kit.stats`, and its exports: every cell as CSV and as JSON lines. The worker stores the three
when the experiment ends (`activities.experiment_report`); the API computes the same report live while it runs."""

from __future__ import annotations

import csv
import io
import json
import math
import zlib
from collections import defaultdict
from typing import Any

from kit import stats
from kit.storage import artifact_key
from models.experiment import CellOutcome, ReportRequest
from models.experiment_report import (
    CONFIDENCE,
    RESAMPLES,
    Comparison,
    Estimate,
    ExperimentReport,
    RowDifference,
    VariantSummary,
)

COLUMNS = ("row", "label", "variant", "repeat", "attempt", "status", "score", "passed", "cost_usd", "tokens",
           "seconds", "child_id", "picture", "error")  # fmt: skip


def seed_of(name: str) -> int:
    """The seed of one statistic: crc32 of its name (`score:<variant>`, `diff:<variant>`, `row:<n>:<variant>`)."""
    return zlib.crc32(name.encode())


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def estimate(interval: stats.Interval) -> Estimate:
    return Estimate(
        mean=_finite(interval.estimate), low=_finite(interval.low), high=_finite(interval.high), count=interval.count
    )


def mean_of(values: list[float], name: str) -> Estimate:
    """The mean with its interval (none for fewer than two values: a single value has no spread to resample)."""
    if not values:
        return Estimate()
    if len(values) < 2:
        return Estimate(mean=values[0], count=1)
    return estimate(stats.mean_interval(values, resamples=RESAMPLES, seed=seed_of(name), confidence=CONFIDENCE))


def paired_of(values: list[float], baseline: list[float], name: str) -> Estimate:
    if not values:
        return Estimate()
    if len(values) < 2:
        return Estimate(mean=values[0] - baseline[0], count=1)
    interval = stats.paired_difference_interval(
        values, baseline, resamples=RESAMPLES, seed=seed_of(name), confidence=CONFIDENCE
    )
    return estimate(interval)


def _summary(name: str, cells: int, outcomes: list[CellOutcome]) -> VariantSummary:
    summary = VariantSummary(name=name, cells=cells)
    counts = defaultdict(int, {status: 0 for status in ("completed", "failed", "refused", "cancelled")})
    for outcome in outcomes:
        counts[outcome.status] += 1
    summary.completed, summary.failed = counts["completed"], counts["failed"]
    summary.refused, summary.cancelled = counts["refused"], counts["cancelled"]
    summary.pending = cells - summary.completed - summary.failed - summary.refused - summary.cancelled
    scores = [o.score for o in outcomes if o.status == "completed" and o.score is not None]
    summary.score = mean_of(scores, f"score:{name}")
    verdicts = [o.passed for o in outcomes if o.status == "completed" and o.passed is not None]
    summary.pass_rate = sum(verdicts) / len(verdicts) if verdicts else None
    summary.cost_usd = round(sum(o.cost_usd or 0.0 for o in outcomes), 6)
    summary.tokens = sum(o.tokens or 0 for o in outcomes)
    seconds = [o.seconds for o in outcomes if o.status == "completed" and o.seconds is not None]
    if seconds:
        summary.seconds_p50, summary.seconds_p95 = (round(v, 3) for v in stats.p50_p95(seconds))
    return summary


def build_report(request: ReportRequest) -> ExperimentReport:
    """The report of the cells as they stand (a live one counts the cells not finished as pending)."""
    rows, variants = len(request.labels), len(request.variants)
    by_variant: dict[int, list[CellOutcome]] = defaultdict(list)
    scored: dict[tuple[int, int], dict[int, float]] = defaultdict(dict)  # (variant, row) → repeat → score
    for outcome in request.outcomes:
        if outcome.status in ("pending", "running"):
            continue
        by_variant[outcome.variant].append(outcome)
        if outcome.status == "completed" and outcome.score is not None:
            scored[outcome.variant, outcome.row][outcome.repeat] = outcome.score
    base, base_name = request.baseline, request.variants[request.baseline]
    summaries = [_summary(name, rows * request.repeat, by_variant[v]) for v, name in enumerate(request.variants)]
    comparisons, differences = [], []
    for v, name in enumerate(request.variants):
        if v == base:
            continue
        means, base_means = [], []
        for row in range(rows):
            mine, theirs = scored.get((v, row), {}), scored.get((base, row), {})
            if mine and theirs:
                means.append(sum(mine.values()) / len(mine))
                base_means.append(sum(theirs.values()) / len(theirs))
            pairs = sorted(set(mine) & set(theirs))
            row_diff = paired_of([mine[k] for k in pairs], [theirs[k] for k in pairs], f"row:{row}:{name}")
            differences.append(
                RowDifference(
                    row=row,
                    label=request.labels[row],
                    variant=name,
                    difference=row_diff,
                    regression=row_diff.high is not None and row_diff.high < 0,
                )
            )
        overall = paired_of(means, base_means, f"diff:{name}")
        comparisons.append(
            Comparison(
                variant=name,
                baseline=base_name,
                difference=overall,
                regression=overall.high is not None and overall.high < 0,
            )
        )
    regressions = sorted((d for d in differences if d.regression), key=lambda d: (d.difference.mean or 0.0, d.row))
    return ExperimentReport(
        experiment_id=request.experiment_id,
        pipeline=request.pipeline,
        baseline=base_name,
        cells=rows * variants * request.repeat,
        finished=sum(1 for o in request.outcomes if o.status not in ("pending", "running")),
        variants=summaries,
        comparisons=comparisons,
        rows=differences,
        regressions=regressions,
    )


def cell_records(request: ReportRequest) -> list[dict[str, Any]]:
    """Every cell with an outcome, in cell order, as the exports list it (the variant by name, the row's label)."""
    return [
        {
            **outcome.model_dump(include=set(COLUMNS)),
            "label": request.labels[outcome.row],
            "variant": request.variants[outcome.variant],
        }
        for outcome in sorted(request.outcomes, key=lambda o: o.cell)
    ]


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula


def spreadsheet_safe(value: object) -> object:
    """A cell as a spreadsheet may open it: text that would start a formula (a row's label, a variant's name: the
    caller's words) gets a leading `'`, as OWASP advises; numbers stay numbers."""
    if value is None:
        return ""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value


def cells_csv(request: ReportRequest) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for record in cell_records(request):
        writer.writerow({k: spreadsheet_safe(v) for k, v in record.items()})
    return out.getvalue().encode()


def cells_jsonl(request: ReportRequest) -> bytes:
    return "".join(json.dumps({k: record[k] for k in COLUMNS}) + "\n" for record in cell_records(request)).encode()


def report_key(experiment_id: str, name: str) -> str:
    return artifact_key("experiments", experiment_id, name)

"""Runs side by side: their best pictures, the models that made them, score per iteration as one chart, cost,
tokens and time, and the settings that differ. An experiment's cells (a matrix's) as a grid: a column per value
of the first setting its variants vary, a line per combination of the others'."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.experiment_api import CellView, ExperimentView
from starter.studio.run_views import ImageView, RunHead

COLOURS = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700")
WIDTH, HEIGHT, PAD = 480, 220, 32


@dataclass
class Compared:
    runs: list[tuple[RunHead, ImageView | None, str]]  # head, view, colour
    settings: list[tuple[str, list[str], bool]]  # setting, value per run, whether they differ
    lines: list[tuple[str, str, list[tuple[float, float, int]]]]  # run id, colour, points (x, y, score)
    most_iterations: int

    def x_of(self, number: int) -> float:
        span = max(self.most_iterations - 1, 1)
        return PAD + (number - 1) * (WIDTH - 2 * PAD) / span

    @staticmethod
    def y_of(score: float) -> float:
        return HEIGHT - PAD - score * (HEIGHT - 2 * PAD) / 100


def flat(value: Any, prefix: str = "") -> dict[str, str]:
    """A job as setting → shown value (`options.quality` → `high`)."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for name, item in value.items():
            out |= flat(item, f"{prefix}{name}.")
        return out
    if isinstance(value, list):
        return {prefix.rstrip("."): ", ".join(str(v.get("key", v)) if isinstance(v, dict) else str(v) for v in value)}
    return {prefix.rstrip("."): "–" if value is None else str(value)}


def compared(runs: list[tuple[RunHead, ImageView | None]]) -> Compared:
    jobs = [flat(head.job) for head, _ in runs]
    names = sorted({name for job in jobs for name in job})
    settings = []
    for name in names:
        values = [job.get(name, "–") for job in jobs]
        settings.append((name, values, len(set(values)) > 1))
    numbers = [it.number for _, view in runs if view for it in view.iterations]
    numbers += [r.iteration for _, view in runs if view for r in view.refusals]
    most = max(numbers, default=1)  # refused iterations count: the axis is the run's iteration numbers
    found = Compared([(head, view, COLOURS[n]) for n, (head, view) in enumerate(runs)], settings, [], max(most, 1))
    for head, view, colour in found.runs:
        if view is not None:
            points = [(found.x_of(it.number), found.y_of(it.score), it.score) for it in view.iterations]
            found.lines.append((head.id, colour, points))
    return found


MOST_ROWS = 10  # a grid per dataset row, for the first of them (a matrix has one; the experiment page has all)


@dataclass
class MatrixGrid:
    across: str  # the first varied setting: a column per value
    values: list[str]
    down: list[str]  # the other varied settings: a line per combination of their values
    lines: list[tuple[list[str], list[int | None]]]  # those values, and the variant in each column (None: none)
    rows: list[tuple[int, str, dict[int, list[CellView]]]]  # each dataset row: number, label, cells by variant
    best: float | None  # the highest score of any cell
    total_rows: int = 0

    @property
    def more_rows(self) -> int:
        return max(0, self.total_rows - len(self.rows))


def matrix_grid(view: ExperimentView, settings: list[dict[str, Any]]) -> MatrixGrid:
    """The cells of `view` by what each variant sets (`settings`: each variant's `set`; its name when unknown)."""
    sets = [flat(settings[v]) if v < len(settings) else {} for v in range(len(view.variants))]
    axes = [name for name in dict.fromkeys(n for s in sets for n in s) if len({s.get(name, "–") for s in sets}) > 1]
    if not axes:  # what they set is unknown (or the same): by name
        sets, axes = [{"variant": name} for name in view.variants], ["variant"]
    values = list(dict.fromkeys(s.get(axes[0], "–") for s in sets))
    lines: dict[tuple[str, ...], list[int | None]] = {}
    for variant, chosen in enumerate(sets):
        line = lines.setdefault(tuple(chosen.get(a, "–") for a in axes[1:]), [None] * len(values))
        line[values.index(chosen.get(axes[0], "–"))] = variant
    rows: list[tuple[int, str, dict[int, list[CellView]]]] = []
    for number, label in enumerate(view.labels[:MOST_ROWS]):
        cells: dict[int, list[CellView]] = {}
        for cell in view.outcomes:
            if cell.row == number:
                cells.setdefault(cell.variant, []).append(cell)
        rows.append((number, label, cells))
    best = max((c.score for c in view.outcomes if c.score is not None), default=None)
    laid = [(list(key), variants) for key, variants in lines.items()]
    return MatrixGrid(axes[0], values, axes[1:], laid, rows, best, total_rows=len(view.labels))

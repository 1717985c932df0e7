"""What the experiment page shows, built from the API's view of an experiment (`ExperimentView`): its columns (the
variants in their own order; in blind mode shuffled and lettered, with no name or setting of theirs), its rows
(each dataset row's cells under each column, and its score differences to the baseline from the report), sorted
and filtered as asked, and the report's numbers as its chart draws them.

Blind mode keeps names out of what is rendered, not merely out of sight: a column is a letter, a cell links to
no run, and its picture is fetched by an opaque token (`picture_token`) that the page resolves, since an artifact
key names the cell's run and so its variant. The shuffle is seeded with the server's secret and the experiment's
id: the same on every load, and not derivable from the id alone."""

from __future__ import annotations

import hashlib
import hmac
import random
import string
from dataclasses import dataclass, field
from typing import Any, Literal

from kit.urls import Urls
from models.experiment_api import CellView, ExperimentView
from models.experiment_report import Comparison, VariantSummary
from starter.studio.compare import flat

Mode = Literal["named", "blind", "revealed"]  # revealed: blind mode's order and letters, with the names
Sort = Literal["order", "worst", "best"]  # the dataset's order; the largest drop, or gain, to the baseline first
THUMB = 96  # the cells' pictures: the API's smallest thumbnail width
CHART_WIDTH, CHART_LEFT, CHART_RIGHT, CHART_BAR = 480, 64, 16, 28


def letter(n: int) -> str:
    """A, B, …, Z, AA, AB, …"""
    upper = string.ascii_uppercase
    return upper[n] if n < len(upper) else upper[n // len(upper) - 1] + upper[n % len(upper)]


def _digest(secret: str, text: str) -> bytes:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()


def blind_order(secret: str, experiment_id: str, variants: int) -> list[int]:
    """The variants in the order blind mode shows them (A first)."""
    order = list(range(variants))
    random.Random(_digest(secret, f"blind:{experiment_id}")).shuffle(order)
    return order


def picture_token(secret: str, experiment_id: str, cell: int, attempt: int) -> str:
    """What names a cell's picture in blind mode: nothing of its run or variant can be read from it."""
    return _digest(secret, f"picture:{experiment_id}:{cell}:{attempt}").hex()[:24]


@dataclass(frozen=True)
class Column:
    letter: str
    variant: int  # its index in the experiment (rendered only with its name)
    name: str | None  # None in blind mode
    settings: tuple[tuple[str, str], ...]  # what it sets, shown (none in blind mode)
    baseline: bool  # marked only with its name


@dataclass(frozen=True)
class Shown:
    """A cell as the page shows it."""

    status: str
    score: float | None = None
    passed: bool | None = None
    picture: str | None = None  # its thumbnail's URL
    run: str | None = None  # its run's page (none in blind mode)
    note: str = ""  # why it failed or was refused (not in blind mode: an error may name a model)


@dataclass
class GridRow:
    index: int
    label: str
    cells: list[list[Shown]]  # per column, one per repeat
    differences: list[float | None]  # per column: its mean score minus the baseline's (None: baseline, unscored)
    regressions: list[bool]  # per column: the report's verdict (an interval entirely below 0)

    @property
    def low(self) -> float | None:
        """The largest drop against the baseline (the sort key of `worst`)."""
        return min((d for d in self.differences if d is not None), default=None)

    @property
    def high(self) -> float | None:
        return max((d for d in self.differences if d is not None), default=None)

    @property
    def regression(self) -> bool:
        return any(self.regressions)


@dataclass(frozen=True)
class Bar:
    """A variant's mean score with its 95 % interval, placed on the chart (0–100 across)."""

    column: Column
    summary: VariantSummary
    y: float

    @staticmethod
    def x_of(score: float) -> float:
        return round(CHART_LEFT + max(0.0, min(100.0, score)) * (CHART_WIDTH - CHART_LEFT - CHART_RIGHT) / 100, 1)


@dataclass
class ExperimentGrid:
    view: ExperimentView
    mode: Mode
    sort: Sort
    regressions_only: bool
    columns: list[Column]
    rows: list[GridRow]  # as sorted (every row: `regressions_only` hides the others)
    since: int  # the order of the last finished cell shown (the page asks for what finished after it)
    bars: list[Bar] = field(default_factory=list)
    comparisons: list[tuple[Column, Comparison]] = field(default_factory=list)  # with names only
    pictures: dict[str, str] = field(default_factory=dict)  # blind mode: token → artifact key

    @property
    def blind(self) -> bool:
        return self.mode == "blind"

    @property
    def running(self) -> bool:
        return self.view.status == "running"

    @property
    def chart_height(self) -> int:
        return 24 + CHART_BAR * len(self.bars)

    @property
    def rerunnable(self) -> int:
        """Cells `rerun-failed` would start again."""
        return self.view.counts.get("failed", 0) + self.view.counts.get("refused", 0)


def _columns(view: ExperimentView, settings: list[dict[str, Any]], mode: Mode, secret: str) -> list[Column]:
    named = mode != "blind"
    count = len(view.variants)
    order = list(range(count)) if mode == "named" else blind_order(secret, view.id, count)
    baseline = view.variants.index(view.baseline) if view.baseline in view.variants else 0
    columns = []
    for n, v in enumerate(order):
        sets = tuple(flat(settings[v]).items()) if named and v < len(settings) else ()
        columns.append(Column(letter(n), v, view.variants[v] if named else None, sets, named and v == baseline))
    return columns


def _shown(cell: CellView, grid: ExperimentGrid, urls: Urls, secret: str) -> Shown:
    picture = None
    if cell.picture and grid.blind:
        token = picture_token(secret, grid.view.id, cell.cell, cell.attempt)
        grid.pictures[token] = cell.picture
        picture = urls.experiment_page(grid.view.id, f"pictures/{token}")
    elif cell.picture:
        picture = urls.artifact(cell.picture, THUMB)
    return Shown(
        status=cell.status,
        score=cell.score,
        passed=cell.passed,
        picture=picture,
        run=None if grid.blind or not cell.child_id else urls.run_page(cell.child_id),
        note="" if grid.blind else (cell.error or ""),
    )


def _rows(grid: ExperimentGrid, urls: Urls, secret: str) -> list[GridRow]:
    view = grid.view
    cells = {(c.row, c.variant, c.repeat): c for c in view.outcomes}
    names = {name: v for v, name in enumerate(view.variants)}
    compared = {(d.row, names[d.variant]): d for d in view.report.rows} if view.report else {}
    pending = Shown(status="pending")
    rows = []
    for index, label in enumerate(view.labels):
        row = GridRow(index, label, [], [], [])
        for column in grid.columns:
            found = [cells.get((index, column.variant, k)) for k in range(view.repeat)]
            row.cells.append([_shown(c, grid, urls, secret) if c else pending for c in found])
            difference = compared.get((index, column.variant))
            row.differences.append(difference.difference.mean if difference else None)
            row.regressions.append(bool(difference and difference.regression))
        rows.append(row)
    return rows


def ordered(rows: list[GridRow], sort: Sort) -> list[GridRow]:
    """The rows in the dataset's order or by difference (rows with no difference yet last). The page's script
    sorts the same way in place (`experiment.js`); "regressions only" hides the others, it does not drop them."""
    if sort == "worst":
        return sorted(rows, key=lambda r: (r.low is None, r.low if r.low is not None else 0.0, r.index))
    if sort == "best":
        return sorted(rows, key=lambda r: (r.high is None, -(r.high if r.high is not None else 0.0), r.index))
    return list(rows)


def experiment_grid(
    view: ExperimentView,
    settings: list[dict[str, Any]],
    urls: Urls,
    secret: str,
    mode: Mode = "named",
    sort: Sort = "order",
    regressions_only: bool = False,
) -> ExperimentGrid:
    """The page's grid of `view`; `settings`: each variant's `set` (what its column says it changes)."""
    grid = ExperimentGrid(view, mode, sort, regressions_only, _columns(view, settings, mode, secret), [], 0)
    grid.rows = ordered(_rows(grid, urls, secret), sort)
    grid.since = max((c.order for c in view.outcomes), default=0)
    if view.report is not None:
        by_name = {s.name: s for s in view.report.variants}
        for n, column in enumerate(grid.columns):
            summary = by_name.get(view.variants[column.variant])
            if summary is not None:
                grid.bars.append(Bar(column, summary, 24 + CHART_BAR * n))
        if not grid.blind:
            columns = {view.variants[c.variant]: c for c in grid.columns}
            grid.comparisons = [(columns[c.variant], c) for c in view.report.comparisons if c.variant in columns]
    return grid


def changed_rows(grid: ExperimentGrid, since: int) -> list[GridRow]:
    """The rows with a cell that finished after the `since`-th, or is running (a live page's update)."""
    moving = {c.row for c in grid.view.outcomes if c.order > since or c.status == "running"}
    return [row for row in grid.rows if row.index in moving]

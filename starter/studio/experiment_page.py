"""An experiment in the Studio: its page (`/experiments/{id}`: the grid of rows × variants, each cell's picture,
status and score, filling in as cells finish; sorted by the difference to the baseline, "regressions only", blind
mode, the report's chart and exports, cancel and rerun-failed through the API), the part a live page swaps in, its
cells under it in the runs list (read when opened), and its cells in Compare as a grid.

The page follows the experiment's events (`experiment.cell.completed`) and then asks for `part?since=<order>`: the
rows with a cell that finished after the last one it shows (or is running), the counts and the report, rendered
as the page renders them, blind mode included. When the stream cannot be had it asks on a timer, backing off."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from fastapi import APIRouter, Request
from fastapi.responses import Response
from temporalio.client import WorkflowExecution
from temporalio.service import RPCError

from kit.run_reading import RunReader
from models.experiment import EXPERIMENT_TYPE
from starter.api import artifacts, experiments
from starter.api.errors import Conflict, NotFound
from starter.api.events import last_seq
from starter.api.service import Service, Svc, owned
from starter.studio.access import Looker, Viewer, page, urls
from starter.studio.compare import matrix_grid
from starter.studio.experiment_grid import THUMB, ExperimentGrid, Mode, Sort, changed_rows, experiment_grid

router = APIRouter(include_in_schema=False)
CELLS_LISTED = 48  # the runs list shows this many of an experiment's started cells at most (its page: all)
WAIT_S = 3  # a page whose experiment no worker answered yet looks again after this


@dataclass(frozen=True)
class PlanFacts:
    """What the runs list and the page read of an experiment's plan (the input of its current run)."""

    cells: int
    rows: int
    settings: list[dict[str, Any]]  # each variant's `set`

    @property
    def matrix(self) -> bool:
        """One row under every variant: a create's `vary` (Compare lays its cells out as a grid)."""
        return self.rows == 1


_facts: LRUCache[tuple[str, str], PlanFacts] = LRUCache(256)  # per Temporal run: its input never changes
# (tenant, experiment) → blind mode's picture tokens → artifact keys, as its pages were given them
_pictures: LRUCache[tuple[str, str], dict[str, str]] = LRUCache(64)


async def plan_facts(svc: Service, run: WorkflowExecution) -> PlanFacts | None:
    """The plan's size and variants (None when its history cannot be read)."""
    key = (run.id, run.run_id or "")
    if key not in _facts:
        try:
            plan = await RunReader(svc.client, svc.store).job(run)
        except RPCError:
            return None
        rows, variants = len(plan.get("rows", [])), plan.get("variants", [])
        cells = rows * len(variants) * int(plan.get("repeat", 1))
        _facts[key] = PlanFacts(cells, rows, [dict(v.get("set") or {}) for v in variants])
    return _facts[key]


async def experiments_listed(svc: Service, runs: list[WorkflowExecution]) -> dict[str, PlanFacts | None]:
    """The facts of the experiments among a runs list's runs, by id."""
    return {run.id: await plan_facts(svc, run) for run in runs if run.workflow_type == EXPERIMENT_TYPE}


async def _grid(
    svc: Service, look: Viewer, experiment_id: str, mode: Mode, sort: Sort = "order", regressions: bool = False
) -> ExperimentGrid:
    described = await owned(svc, look.caller, experiment_id, experiments.TYPES, "experiment")
    view = await experiments.view(svc, look.caller, experiment_id)
    facts = await plan_facts(svc, described)
    grid = experiment_grid(view, facts.settings if facts else [], urls, svc.secret, mode, sort, regressions)
    if grid.pictures:
        _pictures.setdefault((look.caller.tenant, experiment_id), {}).update(grid.pictures)
    return grid


@router.get("/experiments/{experiment_id}")
async def experiment_page(
    experiment_id: str,
    request: Request,
    svc: Svc,
    look: Looker,
    mode: Mode = "named",
    sort: Sort = "order",
    regressions: bool = False,
) -> Response:
    try:
        grid = await _grid(svc, look, experiment_id, mode, sort, regressions)
    except Conflict:  # started, and no worker has answered for it yet
        return page(request, "experiment.html", look, svc, grid=None, experiment_id=experiment_id, wait_s=WAIT_S)
    after = await last_seq(svc, experiment_id) if grid.running else 0  # the page shows what those events said
    return page(request, "experiment.html", look, svc, grid=grid, experiment_id=experiment_id, after=after)


@router.get("/experiments/{experiment_id}/part")
async def experiment_part(
    experiment_id: str, request: Request, svc: Svc, look: Looker, mode: Mode = "named", since: int = 0
) -> Response:
    """What changed since the page's last finished cell (`since`, its order): those rows, the counts, the report
    (nothing, 204, while no worker answers: the page asks again at the next event)."""
    try:
        grid = await _grid(svc, look, experiment_id, mode)
    except Conflict:
        return Response(status_code=204)
    return page(request, "experiment_part.html", look, svc, grid=grid, rows=changed_rows(grid, since))


@router.get("/experiments/{experiment_id}/cells")
async def experiment_cells(experiment_id: str, request: Request, svc: Svc, look: Looker) -> Response:
    """Its cells as the runs list shows them under it: each started one with its variant, row, state and score."""
    try:
        view = await experiments.view(svc, look.caller, experiment_id)
    except Conflict:  # no worker answered for it yet
        return Response("<p>No worker has answered for it yet.</p>", media_type="text/html")
    cells = sorted(view.outcomes, key=lambda c: c.cell)
    shown = cells[:CELLS_LISTED]
    return page(request, "experiment_cells.html", look, svc, view=view, cells=shown, more=len(cells) - len(shown))


@router.get("/experiments/{experiment_id}/compare")
async def experiment_compare(experiment_id: str, request: Request, svc: Svc, look: Looker) -> Response:
    """Its cells in Compare, laid out by what the variants vary (a matrix's settings across and down)."""
    described = await owned(svc, look.caller, experiment_id, experiments.TYPES, "experiment")
    view = await experiments.view(svc, look.caller, experiment_id)
    facts = await plan_facts(svc, described)
    laid_out = matrix_grid(view, facts.settings if facts else [])
    return page(request, "compare_grid.html", look, svc, view=view, matrix=laid_out)


@router.get("/experiments/{experiment_id}/pictures/{token}")
async def blind_picture(experiment_id: str, token: str, request: Request, svc: Svc, look: Looker) -> Response:
    """A cell's picture in blind mode, by the token its page was given: the bytes themselves (the artifact's own
    address names the cell's run, and so its variant; a redirect would show it)."""
    key = _pictures.get((look.caller.tenant, experiment_id), {}).get(token)
    if key is None:  # rendered by another API process, or forgotten here: read the grid again (its owner only)
        key = (await _grid(svc, look, experiment_id, "blind")).pictures.get(token)
    if key is None:
        raise NotFound("picture", token)
    try:
        return await artifacts.fetch(request, svc, look.caller, key, THUMB)
    except NotFound:  # its message would name the artifact
        raise NotFound("picture", token) from None

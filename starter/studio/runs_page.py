"""The studio's front page: every run of the caller's, newest first, with its picture, state, score, cost and
time; filtered by pipeline and state, searched by prompt; its rows refresh while the page is open."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from temporalio.client import WorkflowExecution
from temporalio.service import RPCError

from kit.run_reading import KNOWN_STATES, BadCursor, runs_query
from models.api import Pipeline
from models.pipelines import spec_of
from starter.api.caps import tenant_runs
from starter.api.runs import owned
from starter.api.service import Service, Svc
from starter.studio.access import Looker, page, urls
from starter.studio.experiment_page import experiments_listed
from starter.studio.run_views import RunRow, row_of
from starter.studio.runs_data import studio_runs

router = APIRouter(include_in_schema=False)
PAGE = 25
SEARCHED = 1000  # a search reads at most this many of the newest runs (Temporal cannot search a memo)
PLACEHOLDER = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="192" height="192" viewBox="0 0 192 192">'
    '<rect width="192" height="192" fill="#e6e1d8"/><text x="96" y="104" font-family="sans-serif" '
    'font-size="20" text-anchor="middle" fill="#6b6358">{}</text></svg>'
)


async def searched(svc: Service, query: str, wanted: str) -> list[tuple[RunRow, WorkflowExecution]]:
    """Of the newest SEARCHED runs `query` finds, the first PAGE whose prompt or id holds `wanted`."""
    found: list[tuple[RunRow, WorkflowExecution]] = []
    async for run in svc.client.list_workflows(query, limit=SEARCHED):
        row = await row_of(svc, run)
        if wanted in (row.summary or "").lower() or wanted in row.id.lower():
            found.append((row, run))
            if len(found) == PAGE:
                break
    return found


@router.get("/")
async def runs_page(
    request: Request,
    svc: Svc,
    look: Looker,
    pipeline: Literal[Pipeline, ""] = "",
    state: Annotated[str, Query(max_length=40)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str | None, Query(max_length=4000)] = None,
    part: Literal["rows", ""] = "",
) -> Response:
    state = state.upper() if state.upper() in KNOWN_STATES else ""
    query = runs_query(tenant_runs(look.caller), pipeline or None, state or None)
    rows, runs, more = [], [], None
    if q.strip():
        found = await searched(svc, query, q.strip().lower())
        rows, runs = [row for row, _ in found], [run for _, run in found]
    else:
        try:
            runs, more = await studio_runs(svc).page(query, PAGE, cursor)
        except (BadCursor, RPCError):  # a cursor Temporal no longer takes, or a filter this server lacks
            if cursor is None and not state:
                raise
            return RedirectResponse(urls.runs_page(), status_code=303)
        rows = [await row_of(svc, run) for run in runs]
    context = {"rows": rows, "more": more, "pipeline": pipeline, "state": state, "q": q, "states": KNOWN_STATES}
    context["experiments"] = await experiments_listed(svc, runs)  # each with its cells under it
    context["live"] = cursor is None and not q.strip()  # the first page refreshes; others and searches stand
    context["capped"] = bool(q.strip()) and len(rows) == PAGE
    return page(request, "runs_rows.html" if part else "runs.html", look, svc, **context)


@router.get("/runs/{run_id}/thumbnail")
async def thumbnail(run_id: str, svc: Svc, look: Looker) -> Response:
    """The run's picture, sized down (a placeholder naming the pipeline while there is none)."""
    _, described = await owned(svc, look.caller, run_id)
    key = await studio_runs(svc).picture(described)
    if key is None:
        spec = spec_of(described.workflow_type)
        return Response(PLACEHOLDER.format(spec.name if spec else "run"), media_type="image/svg+xml",
                        headers={"Cache-Control": "no-store"})  # fmt: skip
    return RedirectResponse(urls.artifact(key, 192), status_code=307, headers={"Cache-Control": "private, max-age=5"})

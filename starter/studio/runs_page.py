"""The studio's front page: every run of the caller's, newest first, with its picture, state, score, cost and
time; filtered by pipeline and state, searched by prompt; its rows refresh while the page is open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from temporalio.client import WorkflowExecution
from temporalio.service import RPCError

from models.search_attributes import COST, SCORE
from starter.api.caps import tenant_runs
from starter.api.pipelines import PIPELINES, WORKFLOW_TYPES, pipeline_of_type
from starter.api.runs import STATUS, BadCursor, next_cursor, page_token, state_filter
from starter.api.service import Svc, owned
from starter.run_labels import MEMO_TEXT
from starter.runs_cmd import KNOWN_STATES, state_of
from starter.studio.access import Looker, page, picture
from starter.studio.runs_data import picture_of

router = APIRouter(include_in_schema=False)
PAGE = 25
SEARCHED = 1000  # a search reads at most this many of the newest runs (Temporal cannot search a memo)
PLACEHOLDER = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="192" height="192" viewBox="0 0 192 192">'
    '<rect width="192" height="192" fill="#e6e1d8"/><text x="96" y="104" font-family="sans-serif" '
    'font-size="20" text-anchor="middle" fill="#6b6358">{}</text></svg>'
)


@dataclass
class Row:
    id: str
    pipeline: str
    status: str
    state: str
    text: str
    score: float | None
    cost: float | None
    started: datetime | None
    seconds: float | None


async def row_of(run: WorkflowExecution) -> Row:
    pipe = pipeline_of_type(run.workflow_type)
    end = run.close_time or datetime.now(UTC)
    return Row(
        id=run.id,
        pipeline=pipe.name if pipe else run.workflow_type,
        status=STATUS[run.status],
        state=state_of(run),
        text=await text_of(run),
        score=run.typed_search_attributes.get(SCORE),
        cost=run.typed_search_attributes.get(COST),
        started=run.start_time,
        seconds=(end - run.start_time).total_seconds() if run.start_time else None,
    )


async def text_of(run: WorkflowExecution) -> str:
    """The prompt or topic the run was started with (runs from before the memo, or one the codec cannot
    read, show their id)."""
    try:
        return str(await run.memo_value(MEMO_TEXT, ""))
    except Exception:
        return ""


def query_of(tenant_filter: str, pipeline: str | None, state: str | None) -> str:
    parts = [tenant_filter]
    if pipeline:
        parts.append(f'WorkflowType = "{PIPELINES[pipeline].workflow.__name__}"')
    if state:
        parts.append(state_filter(state))
    return " AND ".join(parts)


@router.get("/")
async def runs_page(
    request: Request,
    svc: Svc,
    look: Looker,
    pipeline: Literal["image", "world", "meme", ""] = "",
    state: Annotated[str, Query(max_length=40)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str | None, Query(max_length=4000)] = None,
    part: Literal["rows", ""] = "",
) -> Response:
    state = state.upper() if state.upper() in KNOWN_STATES else ""
    query = query_of(tenant_runs(look.caller), pipeline or None, state or None)
    rows, more = [], None
    if q.strip():
        wanted = q.strip().lower()
        async for run in svc.client.list_workflows(query, limit=SEARCHED):
            row = await row_of(run)
            if wanted in row.text.lower() or wanted in row.id.lower():
                rows.append(row)
                if len(rows) == PAGE:
                    break
    else:
        try:
            listing = svc.client.list_workflows(query, page_size=PAGE, next_page_token=page_token(cursor))
            await listing.fetch_next_page(page_size=PAGE)
        except (BadCursor, RPCError):  # a cursor Temporal no longer takes, or a filter this server lacks
            if cursor is None and not state:
                raise
            return RedirectResponse("/", status_code=303)
        rows = [await row_of(run) for run in listing.current_page or []]
        more = next_cursor(listing.next_page_token)
    context = {"rows": rows, "more": more, "pipeline": pipeline, "state": state, "q": q, "states": KNOWN_STATES}
    context["live"] = cursor is None and not q.strip()  # the first page refreshes; others and searches stand
    context["capped"] = bool(q.strip()) and len(rows) == PAGE
    return page(request, "runs_rows.html" if part else "runs.html", look, svc, **context)


@router.get("/runs/{run_id}/thumbnail")
async def thumbnail(run_id: str, svc: Svc, look: Looker) -> Response:
    """The run's picture, sized down (a placeholder naming the pipeline while there is none)."""
    described = await owned(svc, look.caller, run_id, set(WORKFLOW_TYPES))
    key = await picture_of(svc, described)
    if key is None:
        pipe = pipeline_of_type(described.workflow_type)
        return Response(PLACEHOLDER.format(pipe.name if pipe else "run"), media_type="image/svg+xml",
                        headers={"Cache-Control": "no-store"})  # fmt: skip
    return RedirectResponse(picture(key, 192), status_code=307, headers={"Cache-Control": "private, max-age=5"})

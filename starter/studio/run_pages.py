"""A run's page (image loop, world or meme), its live part (what the page swaps in when the run's events
say something changed), and the comparison of two to four runs."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from models.pipelines import spec_of
from starter.api.errors import Refused
from starter.api.events import last_seq
from starter.api.runs import owned
from starter.api.service import Service, Svc
from starter.studio import run_views
from starter.studio.access import Looker, Viewer, page
from starter.studio.compare import Compared, compared
from starter.studio.rate_pages import rated_on_page
from starter.studio.run_views import head_of, image_view

router = APIRouter(include_in_schema=False)


async def _run(request: Request, svc: Service, look: Viewer, run_id: str, part: bool) -> Response:
    _, described = await owned(svc, look.caller, run_id)
    spec = spec_of(described.workflow_type)
    head = await head_of(svc, described)
    view = await getattr(run_views, spec.view)(svc, described)
    rated = await rated_on_page(svc, look.caller, [view])  # the viewer's stars on its pictures
    if part:
        return page(request, spec.live, look, svc, head=head, view=view, rated=rated)
    after = await last_seq(svc, run_id) if head.running else 0  # the page shows what those events said
    return page(request, spec.page, look, svc, head=head, view=view, after=after, live=spec.live, rated=rated)


@router.get("/runs/{run_id}")
async def run_page(run_id: str, request: Request, svc: Svc, look: Looker) -> Response:
    return await _run(request, svc, look, run_id, part=False)


@router.get("/runs/{run_id}/part")
async def run_part(run_id: str, request: Request, svc: Svc, look: Looker) -> Response:
    return await _run(request, svc, look, run_id, part=True)


async def _compared(svc: Service, look: Viewer, run_id: str) -> tuple[Any, Any]:
    _, described = await owned(svc, look.caller, run_id)
    head = await head_of(svc, described)
    return head, await image_view(svc, described) if head.pipeline == "image" else None


@router.get("/compare")
async def compare_page(
    request: Request,
    svc: Svc,
    look: Looker,
    run: Annotated[list[str], Query(max_length=4)] = [],  # noqa: B006
) -> Response:
    ids = list(dict.fromkeys(r for r in run if r))
    if not 2 <= len(ids) <= 4:
        raise Refused("choose two to four runs", "compare takes 2 to 4 `run` ids")
    runs = await asyncio.gather(*(_compared(svc, look, run_id) for run_id in ids))
    found: Compared = compared(runs)
    rated = await rated_on_page(svc, look.caller, [view for _, view in runs if view is not None])
    return page(request, "compare.html", look, svc, compared=found, rated=rated)

"""A run's page (image loop, world or meme), its live part (what the page swaps in when the run's events
say something changed), and the comparison of two to four runs."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from starter.api.events import last_seq
from starter.api.pipelines import WORKFLOW_TYPES, pipeline_of_type
from starter.api.problems import ApiProblem
from starter.api.service import Service, Svc, owned
from starter.studio.access import Looker, Viewer, page
from starter.studio.compare import Compared, compared
from starter.studio.run_views import head_of, image_view, meme_view, world_page

router = APIRouter(include_in_schema=False)
VIEWS = {"image": image_view, "world": world_page, "meme": meme_view}


async def _run(request: Request, svc: Service, look: Viewer, run_id: str, part: bool) -> Response:
    described = await owned(svc, look.caller, run_id, set(WORKFLOW_TYPES))
    pipeline = pipeline_of_type(described.workflow_type).name
    head = await head_of(svc, described)
    view = await VIEWS[pipeline](svc, described)
    if part:
        return page(request, f"{pipeline}_live.html", look, svc, head=head, view=view)
    after = await last_seq(svc, run_id) if head.running else 0  # the page shows what those events said
    name = "image.html" if pipeline == "image" else "run.html"  # the image loop adds its feedback box
    return page(request, name, look, svc, head=head, view=view, after=after)


@router.get("/runs/{run_id}")
async def run_page(run_id: str, request: Request, svc: Svc, look: Looker) -> Response:
    return await _run(request, svc, look, run_id, part=False)


@router.get("/runs/{run_id}/part")
async def run_part(run_id: str, request: Request, svc: Svc, look: Looker) -> Response:
    return await _run(request, svc, look, run_id, part=True)


async def _compared(svc: Service, look: Viewer, run_id: str) -> tuple[Any, Any]:
    described = await owned(svc, look.caller, run_id, set(WORKFLOW_TYPES))
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
        raise ApiProblem(422, "choose two to four runs", "compare takes 2 to 4 `run` ids")
    runs = await asyncio.gather(*(_compared(svc, look, run_id) for run_id in ids))
    found: Compared = compared(runs)
    return page(request, "compare.html", look, svc, compared=found)

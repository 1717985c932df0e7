"""A living world's character in the Studio (`/runs/{life}/characters/{username}`): who follows it and whom it
follows, its latest posts (each with the post it answers or quotes), its reflections and what it last recalled
(`kit.life_layout`'s readers of what the life's memory stores). The life's own page is its run page
(`life.html`, its live part `life_live.html`, gathered by `run_views.life_view`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kit.life_layout import recalled_of, reflections_of
from models.workflow_interfaces import LifeWorkflow
from starter.api.errors import NotFound
from starter.api.runs import owned
from starter.api.service import Svc
from starter.studio.access import Looker, page
from starter.studio.run_views import life_view

router = APIRouter(include_in_schema=False)


@router.get("/runs/{life_id}/characters/{username}")
async def character_page(life_id: str, username: str, request: Request, svc: Svc, look: Looker) -> Response:
    _, described = await owned(svc, look.caller, life_id)
    if described.workflow_type != LifeWorkflow.__name__:
        raise NotFound("life", life_id)
    view = await life_view(svc, described)
    if view.status is None or view.data is None:
        raise NotFound("life", life_id)  # nothing stored yet, or no worker answered: the life's page says so
    data = view.data
    if username not in data.cast and not any(p.username == username for p in data.state.posts.values()):
        raise NotFound("character", f"{life_id}/{username}")
    tick, recalled = await recalled_of(svc.store, life_id, username)
    return page(
        request,
        "life_character.html",
        look,
        svc,
        life_id=life_id,
        world_id=view.status.world_id,
        username=username,
        member=data.cast.get(username),
        d=data,
        followers=data.followers(username),
        following=data.following(username),
        posts=data.posts_of(username),
        reflections=await reflections_of(svc.store, life_id, username),
        recalled=recalled,
        recalled_tick=tick,
    )

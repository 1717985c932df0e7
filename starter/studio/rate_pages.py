"""People's verdicts in the Studio: an experiment's blind annotation queue (`/rate?experiment=…`: the next pair,
its pictures by token, keys ← → ↓ for A, B or a tie, a progress bar, undo of the last vote), the leaderboard
(`/leaderboard`) and the judge measured (`/judge`, with a scatter of its score against people's stars); and the
stars a run page's pictures show (`rated_on_page`). Everything goes through `starter.api.ratings`, as the API's
routes do; the queue's votes come here by token, so the page never holds an artifact key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from kit.storage import run_key
from models.experiment import ExperimentStatus
from models.ratings import NewVote, Winner
from starter.api import artifacts, ratings
from starter.api.errors import Conflict, Invalid, NotFound
from starter.api.experiments import TYPES
from starter.api.experiments import live_grid as experiment_grid
from starter.api.rated import MEME_PICTURE
from starter.api.service import Caller, Service, Svc, owned
from starter.studio.access import Looker, page, templates, urls
from starter.studio.rate_queue import by_key, by_token, queue

router = APIRouter(include_in_schema=False)
templates.env.globals["run_key"] = run_key  # where a run stored its own artifact (a meme's picture: its stars)
SHOWN = 768  # the queue's pictures: a thumbnail this wide
SCATTER = {"width": 480, "height": 260, "left": 40, "right": 16, "top": 12, "bottom": 36}


class BlindVote(BaseModel):
    """What the queue's page sends: the pair by its pictures' tokens, and the verdict."""

    model_config = ConfigDict(extra="forbid")

    experiment: str
    a: str = ""
    b: str = ""
    winner: Winner = "tie"


async def _grid(svc: Service, caller: Caller, experiment_id: str) -> ExperimentStatus:
    described = await owned(svc, caller, experiment_id, TYPES, "experiment")
    if (grid := await experiment_grid(svc, described)) is None:
        raise Conflict("no answer", "no worker answered for this experiment yet", retry_after_s=2)
    return grid


@router.get("/rate")
async def rate_page(
    request: Request,
    svc: Svc,
    look: Looker,
    experiment: str,
    a: Annotated[str | None, Query(max_length=64)] = None,
    b: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    grid = await _grid(svc, look.caller, experiment)
    asked = (a, b) if a and b else None
    found = queue(grid, svc.secret, experiment, await ratings.voted_pairs(svc, look.caller, experiment), asked)
    return page(request, "rate.html", look, svc, queue=found, experiment_id=experiment, shown=SHOWN)


@router.get("/rate/pictures/{token}")
async def rate_picture(token: str, experiment: str, request: Request, svc: Svc, look: Looker) -> Response:
    """A queue's picture by its token: the bytes themselves (a redirect would show the artifact's address)."""
    found = by_token(await _grid(svc, look.caller, experiment), svc.secret, experiment, token)
    if found is None:
        raise NotFound("picture", token)
    try:
        return await artifacts.fetch(request, svc, look.caller, found.key, SHOWN)
    except NotFound:  # its message would name the artifact
        raise NotFound("picture", token) from None


@router.post("/rate/vote")
async def rate_vote(body: BlindVote, svc: Svc, look: Looker) -> Response:
    """The queue's vote, as `POST /v1/votes` takes it; where the queue goes next."""
    grid = await _grid(svc, look.caller, body.experiment)
    sides = [by_token(grid, svc.secret, body.experiment, token) for token in (body.a, body.b)]
    if sides[0] is None or sides[1] is None:
        raise Invalid("body.a" if sides[0] is None else "body.b", "not a picture of this experiment's queue")
    vote = await ratings.vote(svc, look.caller, NewVote(a=sides[0].key, b=sides[1].key, winner=body.winner))
    return JSONResponse({"id": vote.id, "next": urls.rate_page(body.experiment)}, status_code=201)


@router.post("/rate/undo")
async def rate_undo(body: BlindVote, svc: Svc, look: Looker) -> Response:
    """Take back the rater's last vote in the experiment; the queue shows that pair again, as it was."""
    grid = await _grid(svc, look.caller, body.experiment)
    last = await ratings.undo_last(svc, look.caller, body.experiment)
    a, b = (by_key(grid, svc.secret, body.experiment, key) for key in (last.a, last.b))
    tokens = {"a": a.token, "b": b.token} if a and b else {}
    return JSONResponse({"undone": last.id, "next": urls.rate_page(body.experiment, **tokens)})


@router.get("/leaderboard")
async def leaderboard_page(request: Request, svc: Svc, look: Looker, experiment: str | None = None) -> Response:
    board = await ratings.leaderboard(svc, look.caller, experiment)
    shown = [e for e in board.entries if e.low is not None and e.high is not None]
    scale = _scale([v for e in shown for v in (e.low, e.high)])
    return page(request, "leaderboard.html", look, svc, board=board, scale=scale)


@router.get("/judge")
async def judge_page(request: Request, svc: Svc, look: Looker, experiment: str | None = None) -> Response:
    report = await ratings.judge(svc, look.caller, experiment)
    return page(request, "judge.html", look, svc, report=report, plot=SCATTER)


def _scale(values: list[float]) -> dict[str, Any]:
    """The leaderboard chart's x axis: its span with a margin, and a function placing a strength on it."""
    low, high = (min(values), max(values)) if values else (900.0, 1100.0)
    margin = max(10.0, (high - low) * 0.05)
    low, high = low - margin, high + margin
    width, left, right = 480, 150, 8  # the names on the left, the intervals beside them

    def x(value: float) -> float:
        return round(left + (value - low) / (high - low) * (width - left - right), 2)

    return {"low": low, "high": high, "x": x, "width": width, "left": left}


async def rated_on_page(svc: Service, caller: Caller, views: list[Any]) -> dict[str, int]:
    """The caller's stars for the pictures these run views show (an image run's iterations, a meme)."""
    keys = []
    for view in views:
        keys += [it.image.key for it in getattr(view, "iterations", None) or []]
        if (result := getattr(view, "result", None)) is not None and hasattr(result, "meme_id"):
            keys.append(run_key(result.meme_id, MEME_PICTURE))
    return await ratings.stars_given(svc, caller, keys)

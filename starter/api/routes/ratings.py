"""`/v1/ratings`, `/v1/votes`, `/v1/leaderboard` and `/v1/judge`: people's verdicts on what runs made and what
they add up to (the work: `starter.api.ratings`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from models.ratings import JudgeReport, Leaderboard, NewRating, NewVote, RatingView, Verdicts, VoteView
from starter.api import ratings
from starter.api.service import Svc, Who

router = APIRouter(prefix="/v1", tags=["ratings"])
Run = Annotated[str | None, Query(description="only this run's artifacts")]
Experiment = Annotated[str | None, Query(description="only this experiment's artifacts (its variants, for a board)")]


@router.post("/ratings", status_code=201, response_model=RatingView, summary="Rate an artifact a run made")
async def rate(body: NewRating, svc: Svc, caller: Who) -> Any:
    """1–5 stars, tags and a comment on an artifact (its key, as a result or an event names it); the same
    key's second rating of it replaces the first. 404 for an artifact that is not one of the tenant's runs'."""
    return await ratings.rate(svc, caller, body)


@router.get("/ratings", response_model=Verdicts, summary="The tenant's ratings and votes")
async def verdicts(
    svc: Svc,
    caller: Who,
    run: Run = None,
    experiment: Experiment = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Any:
    return await ratings.verdicts(svc, caller, run, experiment, limit)


@router.get(
    "/ratings/export",
    summary="Every rating and vote as JSON lines",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def export(svc: Svc, caller: Who, experiment: Experiment = None) -> Response:
    """One line per rating and per vote, oldest first: the artifact, its prompt, model, judge and judge's
    score, and what people said."""
    data = await ratings.export(svc, caller, experiment)
    headers = {"Content-Disposition": 'attachment; filename="ratings.jsonl"'}
    return Response(data, media_type="application/x-ndjson", headers=headers)


@router.post("/votes", status_code=201, response_model=VoteView, summary="Vote between two artifacts")
async def vote(body: NewVote, svc: Svc, caller: Who) -> Any:
    """Which of two artifacts made for the same prompt is better, or a tie (422 naming `body.b` for two of
    different prompts); the same key's second vote on the same two replaces the first."""
    return await ratings.vote(svc, caller, body)


@router.delete("/votes/{vote_id}", status_code=204, summary="Take back a vote")
async def unvote(vote_id: str, svc: Svc, caller: Who) -> None:
    await ratings.unvote(svc, caller, vote_id)


@router.get("/leaderboard", response_model=Leaderboard, summary="Models (or an experiment's variants) by votes")
async def leaderboard(svc: Svc, caller: Who, experiment: Experiment = None) -> Any:
    """Bradley–Terry strengths from the tenant's votes with 95 % bootstrap intervals, win rates and mean
    stars, best first: per model, or per variant of one experiment."""
    return await ratings.leaderboard(svc, caller, experiment)


@router.get("/judge", response_model=JudgeReport, summary="Each evaluator model measured against people")
async def judge(svc: Svc, caller: Who, experiment: Experiment = None) -> Any:
    """Spearman ρ of its score and people's stars, Cohen's κ of passing the threshold and being rated 4–5,
    agreement with people's votes, each with a 95 % interval and its count; the best-agreeing threshold."""
    return await ratings.judge(svc, caller, experiment)

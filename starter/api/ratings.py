"""People's verdicts over the API (`routes/ratings.py`) and the Studio: rate an artifact a run made, vote
between two made for the same prompt, take a vote back, list them, export them as JSON lines, and what they
add up to (`starter.api.standings`: the leaderboard, the judge measured). Per tenant, in the database
(`kit.db.ratings`); the rater is the key that calls (by its public id; a studio session is its key's). What an
artifact was is found once (`starter.api.rated`) and recorded with the first verdict on it; another tenant's
artifact, run or experiment answers 404, exactly as an unknown one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kit.api_keys import LOCAL_TENANT
from kit.db import Database
from kit.db.ratings import RatedArtifact, Rating, Ratings, StoredVote, Vote
from models.experiment import EXPERIMENT_TYPE
from models.pipelines import WORKFLOW_TYPES
from models.ratings import JudgeReport, Leaderboard, NewRating, NewVote, Rated, RatingView, Verdicts, VoteView
from starter.api import standings
from starter.api.errors import Invalid, NotFound
from starter.api.rated import made
from starter.api.service import Caller, Service, owned

KEY_ID = 12  # a key's public id: its digest's first characters (`kit.api_keys`)


def rater(caller: Caller) -> str:
    """Who rates: the public id of the caller's key (its session's key), or `local` without keys."""
    return caller.bucket[:KEY_ID] if caller.keyed else LOCAL_TENANT


def database(svc: Service) -> Database:
    return svc.keys.database  # the keys' database: every API process on it shares the verdicts


async def facts(svc: Service, caller: Caller, key: str) -> RatedArtifact:
    """What the caller's artifact is: as recorded with an earlier verdict, else read from its run (404)."""
    if not caller.owns(key.split("/")[1] if key.count("/") >= 2 else ""):
        raise NotFound("artifact", key)

    def recorded() -> RatedArtifact | None:
        with database(svc).reading() as session:
            return Ratings(session, caller.tenant).facts(key)

    return await asyncio.to_thread(recorded) or await made(svc, caller, key)


def rated(svc: Service, found: RatedArtifact) -> Rated:
    return Rated(
        artifact=found.key,
        url=svc.urls.artifact(found.key),
        run=found.run,
        pipeline=found.pipeline,
        kind=found.kind,
        prompt=found.prompt,
        model=found.model,
        judge=found.judge,
        judge_score=found.score,
        threshold=found.threshold,
        experiment=found.experiment,
        variant=found.variant,
        row=found.row,
    )


def rating_view(svc: Service, rating: Rating, found: RatedArtifact) -> RatingView:
    given = {"rater": rating.rater, "stars": rating.stars, "tags": rating.tags, "comment": rating.comment}
    return RatingView(**rated(svc, found).model_dump(), **given, rated_at=rating.rated_at)


def vote_view(svc: Service, vote: Vote, a: RatedArtifact, b: RatedArtifact) -> VoteView:
    return VoteView(
        id=vote.id,
        rater=vote.rater,
        a=rated(svc, a),
        b=rated(svc, b),
        winner=vote.winner,  # type: ignore[arg-type]
        experiment=vote.experiment,
        voted_at=vote.voted_at,
    )


async def rate(svc: Service, caller: Caller, body: NewRating) -> RatingView:
    """The caller's rating of the artifact, replacing its earlier one."""
    found = await facts(svc, caller, body.artifact)

    def write() -> Rating:
        with database(svc).writing() as session:
            ratings = Ratings(session, caller.tenant)
            ratings.record(found)
            return ratings.rate(rater(caller), body.artifact, body.stars, body.tags, body.comment)

    return rating_view(svc, await asyncio.to_thread(write), found)


async def vote(svc: Service, caller: Caller, body: NewVote) -> VoteView:
    """The caller's vote between two artifacts made for the same prompt (422 naming `body.b` otherwise),
    replacing its earlier vote on the same two."""
    if body.a == body.b:
        raise Invalid("body.b", "the same artifact as a: a vote is between two")
    a, b = await asyncio.gather(facts(svc, caller, body.a), facts(svc, caller, body.b))
    if a.prompt != b.prompt:
        raise Invalid("body.b", f"made for another prompt than a ({b.prompt[:80]!r}, not {a.prompt[:80]!r})")
    experiment = a.experiment if a.experiment == b.experiment else None

    def write() -> Vote:
        with database(svc).writing() as session:
            ratings = Ratings(session, caller.tenant)
            ratings.record(a)
            ratings.record(b)
            return ratings.vote(rater(caller), body.a, body.b, body.winner, experiment)

    return vote_view(svc, await asyncio.to_thread(write), a, b)


async def unvote(svc: Service, caller: Caller, vote_id: str) -> Vote:
    """Take back one of the caller's own votes (404 for any other)."""

    def delete() -> Vote | None:
        with database(svc).writing() as session:
            return Ratings(session, caller.tenant).unvote(rater(caller), vote_id)

    if (gone := await asyncio.to_thread(delete)) is None:
        raise NotFound("vote", vote_id)
    return gone


async def undo_last(svc: Service, caller: Caller, experiment: str) -> Vote:
    """Take back the caller's last vote in the experiment (404 when it has none there)."""

    def delete() -> Vote | None:
        with database(svc).writing() as session:
            found = Ratings(session, caller.tenant)
            last = found.last_vote(rater(caller), experiment)
            return found.unvote(rater(caller), last.id) if last is not None else None

    if (gone := await asyncio.to_thread(delete)) is None:
        raise NotFound("vote", f"of yours in {experiment}")
    return gone


async def voted_pairs(svc: Service, caller: Caller, experiment: str) -> set[str]:
    """The pairs (`kit.db.ratings.pair_of`) the caller has voted on in the experiment."""

    def read() -> set[str]:
        with database(svc).reading() as session:
            return Ratings(session, caller.tenant).voted_pairs(rater(caller), experiment)

    return await asyncio.to_thread(read)


async def _scope(svc: Service, caller: Caller, run: str | None, experiment: str | None) -> None:
    """The run or experiment asked about is the caller's (404 otherwise); at most one of them."""
    if run is not None and experiment is not None:
        raise Invalid("query.experiment", "give run or experiment, not both")
    if run is not None:
        await owned(svc, caller, run, set(WORKFLOW_TYPES))
    if experiment is not None:
        await owned(svc, caller, experiment, {EXPERIMENT_TYPE}, "experiment")


def _stored(svc: Service, tenant: str, run: str | None, experiment: str | None, limit: int | None) -> Any:
    with database(svc).reading() as session:
        ratings = Ratings(session, tenant)
        return ratings.ratings(run, experiment, limit), ratings.votes(run, experiment, limit)


async def verdicts(
    svc: Service, caller: Caller, run: str | None, experiment: str | None, limit: int | None = None
) -> Verdicts:
    """The tenant's ratings and votes (on a run's artifacts, or an experiment's), newest first."""
    await _scope(svc, caller, run, experiment)
    given, votes = await asyncio.to_thread(_stored, svc, caller.tenant, run, experiment, limit)
    return Verdicts(
        ratings=[rating_view(svc, rating, found) for rating, found in given],
        votes=[vote_view(svc, v.vote, v.a, v.b) for v in votes],
    )


def _line(found: RatedArtifact) -> dict[str, Any]:
    return {
        "artifact": found.key,
        "model": found.model,
        "variant": found.variant,
        "judge": found.judge,
        "judge_score": found.score,
        "threshold": found.threshold,
    }


async def export(svc: Service, caller: Caller, experiment: str | None) -> bytes:
    """Every rating and vote as JSON lines, oldest first: what was rated (artifact, prompt, model, the judge
    and its score) and what people said of it; a data set to tune the judge on."""
    await _scope(svc, caller, None, experiment)
    given, votes = await asyncio.to_thread(_stored, svc, caller.tenant, None, experiment, None)
    lines = [
        {"type": "rating", "prompt": found.prompt, **_line(found), "run": found.run, "experiment": found.experiment}
        | {"stars": rating.stars, "tags": rating.tags, "comment": rating.comment, "rater": rating.rater}
        | {"at": rating.rated_at.isoformat()}
        for rating, found in reversed(given)
    ]
    lines += [_vote_line(v) for v in reversed(votes)]
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()


def _vote_line(stored: StoredVote) -> dict[str, Any]:
    vote = stored.vote
    return {
        "type": "vote",
        "prompt": stored.a.prompt,
        "a": _line(stored.a),
        "b": _line(stored.b),
        "winner": vote.winner,
        "experiment": vote.experiment,
        "rater": vote.rater,
        "at": vote.voted_at.isoformat(),
    }


async def leaderboard(svc: Service, caller: Caller, experiment: str | None) -> Leaderboard:
    """The models by the tenant's votes, or the experiment's variants by its votes."""
    await _scope(svc, caller, None, experiment)
    return await asyncio.to_thread(standings.leaderboard, database(svc), caller.tenant, experiment)


async def judge(svc: Service, caller: Caller, experiment: str | None) -> JudgeReport:
    """Each evaluator model measured against the tenant's people (in one experiment, given one)."""
    await _scope(svc, caller, None, experiment)
    return await asyncio.to_thread(standings.judge, database(svc), caller.tenant, experiment)


async def stars_given(svc: Service, caller: Caller, keys: list[str]) -> dict[str, int]:
    """The caller's stars for each of these artifacts it rated (what a page's star buttons show)."""

    def read() -> dict[str, int]:
        with database(svc).reading() as session:
            return Ratings(session, caller.tenant).stars_of(rater(caller), keys)

    return await asyncio.to_thread(read) if keys else {}

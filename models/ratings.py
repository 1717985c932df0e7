"""What the HTTP API takes and answers about people's verdicts (`/v1/ratings`, `/v1/votes`, `/v1/leaderboard`,
`/v1/judge`): a rating (1–5 stars, tags, a comment) or a pairwise vote on artifacts a run made (by the key a
result or an event names), each with what that artifact was; the leaderboard of models or of an experiment's
variants; the evaluator measured against people. Every interval is a 95 % bootstrap (`kit.stats`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Winner = Literal["a", "b", "tie"]
ArtifactKey = Annotated[str, StringConstraints(min_length=3, max_length=512)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[^\x00-\x1f]+$")]
LIKED = 4  # "rated 4 or 5": what the judge's pass is compared with


class NewRating(BaseModel):
    """`POST /v1/ratings`: the caller's rating of an artifact (a second one by the same key replaces it)."""

    model_config = ConfigDict(extra="forbid")

    artifact: ArtifactKey
    stars: int = Field(ge=1, le=5, strict=True)  # a number of stars: `true` is not one
    tags: list[Tag] = Field(default_factory=list, max_length=16)
    comment: str | None = Field(default=None, max_length=2000)


class NewVote(BaseModel):
    """`POST /v1/votes`: which of two artifacts made for the same prompt is better (or a tie)."""

    model_config = ConfigDict(extra="forbid")

    a: ArtifactKey
    b: ArtifactKey
    winner: Winner


class Rated(BaseModel):
    """What a rated artifact was, as recorded the first time it was rated or voted on."""

    artifact: str
    url: str  # the artifact itself
    run: str
    pipeline: str
    kind: str  # iteration, meme, avatar, post, picture
    prompt: str
    model: str | None = None  # the model that made it
    judge: str | None = None  # the evaluator that scored it
    judge_score: float | None = None  # 0–100
    threshold: float | None = None  # the run's pass mark, 0–100
    experiment: str | None = None
    variant: str | None = None
    row: int | None = None


class RatingView(Rated):
    rater: str  # the public id of the key that rated (`local` without keys)
    stars: int
    tags: list[str]
    comment: str | None
    rated_at: datetime


class VoteView(BaseModel):
    id: str
    rater: str
    a: Rated
    b: Rated
    winner: Winner
    experiment: str | None
    voted_at: datetime


class Verdicts(BaseModel):
    """`GET /v1/ratings`: the tenant's ratings and votes (of a run's or an experiment's artifacts), newest first."""

    ratings: list[RatingView]
    votes: list[VoteView]


class Estimate(BaseModel):
    """An estimate with its 95 % interval (None: nothing to estimate) and the count it rests on."""

    estimate: float | None = None
    low: float | None = None
    high: float | None = None
    count: int = 0


class Entry(BaseModel):
    """One model's (or variant's) place: Bradley–Terry strength on the Elo scale with its interval, the votes
    it took part in and its win rate (a tie half a win), and its mean stars."""

    name: str
    strength: float | None = None
    low: float | None = None
    high: float | None = None
    votes: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0
    win_rate: float | None = None
    mean_stars: Estimate = Field(default_factory=Estimate)


class Leaderboard(BaseModel):
    """`GET /v1/leaderboard`: best first (by strength; those with no votes after, by stars)."""

    by: Literal["model", "variant"]
    experiment: str | None = None
    votes: int  # the votes it was fitted on
    ratings: int
    method: str
    entries: list[Entry]


class Threshold(BaseModel):
    """The pass mark that agrees best with people (Cohen's κ of "score ≥ it" and "rated 4 or 5")."""

    value: float | None = None
    kappa: float | None = None
    count: int = 0


class Point(BaseModel):
    """How many ratings gave `stars` to an artifact the judge scored `score`."""

    score: float
    stars: int
    count: int


class Evaluator(BaseModel):
    """One evaluator model against people: Spearman ρ of its score and their stars, Cohen's κ of "passes the
    run's threshold" and "rated 4 or 5", and how often it scored higher the side people voted for."""

    judge: str
    spearman: Estimate
    kappa: Estimate
    agreement: Estimate
    best_threshold: Threshold
    points: list[Point]


class JudgeReport(BaseModel):
    """`GET /v1/judge`: each evaluator model measured against the tenant's people."""

    experiment: str | None = None
    method: str
    evaluators: list[Evaluator]

"""Schemas of a world's life: characters who read their feed and act, one action each per tick, on the world a
world run made (`kit.world_layout`). The life's state (posts, follows, likes, reposts) lives in the artifact store
(`activities.life`: its keys); the workflow's history carries only its keys and counters.

An action's `id` is stable (`action_id`: the tick and the character), so a retried batch neither loses nor doubles
one; a post made by an action takes the action's id."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

from models.artifacts import ArtifactRef
from models.catalog import ModelChoice
from models.conversation import Passage
from models.text import ModelOutput
from models.usage import PaidRequest, Spend, Usage
from models.world import Budget, CallUsage

DURATION = re.compile(r"^([1-9][0-9]{0,5})([smhd])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(text: str) -> int:
    """Seconds of a duration such as `30m`, `1h`, `2d` (simulated time: a tick is a step, never a sleep)."""
    match = DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r}: a duration such as 30m, 1h or 2d")
    return int(match.group(1)) * SECONDS[match.group(2)]


class ActionKind(StrEnum):
    POST = "post"
    REPLY = "reply"
    QUOTE = "quote"
    LIKE = "like"
    REPOST = "repost"
    FOLLOW = "follow"
    UNFOLLOW = "unfollow"
    NONE = "none"


WRITES = (ActionKind.POST, ActionKind.REPLY, ActionKind.QUOTE)  # the actions that make a post
ON_POSTS = (ActionKind.REPLY, ActionKind.QUOTE, ActionKind.LIKE, ActionKind.REPOST)  # the ones that name a post
ON_PEOPLE = (ActionKind.FOLLOW, ActionKind.UNFOLLOW)  # the ones that name a character


WORLD_RUN = re.compile(r"(^|\.)world-")


def life_id(world_id: str) -> str:
    """The id of a world's life: the world's id with `life-` for `world-` (`acme.world-…` → `acme.life-…`, so a
    tenant's world lives as its run), else the world's id and `-life`. One life per world at a time."""
    lived = WORLD_RUN.sub(r"\1life-", world_id, count=1)
    return lived if lived != world_id else f"{world_id}-life"


def action_id(tick: int, username: str) -> str:
    """The stable id of a character's one action in a tick (and of the post it makes)."""
    return f"{tick}:{username}"


# --- what the language model decides -------------------------------------------------------------


class Choice(ModelOutput):
    """One character's action this tick, as the model decides it: `post` names the post it replies to, quotes,
    likes or reposts (an id from its feed), `username` the character it follows or unfollows."""

    username: str
    kind: ActionKind
    text: str = ""
    post: str | None = None
    target: str | None = None
    picture: str | None = None  # a post (not a reply or quote) may ask for a picture: what it shows, briefly


class Decisions(ModelOutput):
    """A batch's decisions: one per character of the batch."""

    actions: list[Choice]


# --- the stored life -------------------------------------------------------------------------------


class CastMember(BaseModel):
    """A character as the life knows it (from its profile): who it is, what it is into, how active it is."""

    username: str
    display_name: str
    bio: str = ""
    speaking_style: str = ""
    interests: list[str] = Field(default_factory=list)
    activity: float = Field(default=1.0, gt=0)  # its weight when the active characters are drawn


class Cast(BaseModel):
    """`lives/<life>/cast.json`: the world's characters and the world in a line."""

    world_id: str
    world_name: str = ""
    visual_style: str = ""  # the world's, for its posts' pictures
    members: list[CastMember]


class Action(BaseModel):
    """A decided action, with its stable id and its tick."""

    id: str
    tick: int
    username: str
    kind: ActionKind
    text: str = ""
    post: str | None = None  # the post replied to, quoted, liked or reposted
    target: str | None = None  # the character followed or unfollowed
    picture: str | None = None  # a post's asked-for picture: what it shows


class Post(BaseModel):
    id: str
    username: str
    text: str
    tick: int  # 0: the world's own posts, made before its life
    reply_to: str | None = None
    quote_of: str | None = None
    picture: ArtifactRef | None = None  # its picture (claim check: key and sha256), made on the image queue


class LifeEvent(BaseModel):
    """An event injected from outside: it enters every feed at `tick`."""

    id: str
    text: str = Field(min_length=1, max_length=500)
    tick: int


class FeedItem(BaseModel):
    """A post as a character reads it in its feed."""

    id: str
    username: str
    text: str
    tick: int
    score: float


class Feed(BaseModel):
    """What one character reads this tick: the ranked posts and the events of the tick."""

    username: str
    items: list[FeedItem] = Field(default_factory=list)
    events: list[LifeEvent] = Field(default_factory=list)
    following: list[str] = Field(default_factory=list)  # whom it follows as it reads


class Feeds(BaseModel):
    """`lives/<life>/feeds/<tick>.json`: every active character's feed of a tick."""

    tick: int
    feeds: dict[str, Feed]


class LifeState(BaseModel):
    """`lives/<life>/state/<tick>.json`: the life as of the end of a tick."""

    life_id: str
    world_id: str
    tick: int = 0
    posts: dict[str, Post] = Field(default_factory=dict)  # by id, in the order they were made
    follows: dict[str, list[str]] = Field(default_factory=dict)  # username → the characters it follows
    likes: dict[str, list[str]] = Field(default_factory=dict)  # post id → who liked it
    reposts: dict[str, list[str]] = Field(default_factory=dict)  # post id → who reposted it
    replies: dict[str, int] = Field(default_factory=dict)  # post id → replies and quotes it had
    events: list[LifeEvent] = Field(default_factory=list)
    applied: list[str] = Field(default_factory=list)  # every action id applied so far


# --- activity requests and results -----------------------------------------------------------------


class OpenLifeRequest(BaseModel):
    life_id: str
    world_id: str


class Opened(BaseModel):
    """The life, ready to tick: its cast (usernames and weights: small), where it is stored, its last tick."""

    cast: ArtifactRef
    members: list[tuple[str, float]]  # username, activity
    state: ArtifactRef
    tick: int


class RankRequest(BaseModel):
    life_id: str
    tick: int
    cast: ArtifactRef
    state: ArtifactRef
    active: list[str]
    events: list[LifeEvent] = Field(default_factory=list)  # injected since the last tick
    feed_size: int = Field(default=8, ge=1, le=50)


class Memory(BaseModel):
    """Where a tick's memory is stored (`models.life_memory`): each active character's latest reflection and the
    memories it recalls, most like what it reads now."""

    reflections: ArtifactRef
    recalled: ArtifactRef


class DecideRequest(PaidRequest):
    life_id: str
    tick: int
    batch: int
    usernames: list[str]
    cast: ArtifactRef
    feeds: ArtifactRef
    memory: Memory | None = None  # None: a life from before memory


class DecisionContext(BaseModel):
    """What a batch's characters read before they act: the offline provider decides from it."""

    tick: int
    world_name: str = ""
    characters: list[CastMember]
    feeds: dict[str, Feed]
    interests: dict[str, list[str]] = Field(default_factory=dict)  # every character's, by username
    memories: dict[str, list[Passage]] = Field(default_factory=dict)  # what each recalls, most relevant first
    reflections: dict[str, str] = Field(default_factory=dict)  # each one's latest reflection


class PictureAsk(BaseModel):
    """A post of the tick that asks for a picture: its action's id, its author and what the picture shows."""

    post: str
    username: str
    description: str


class Decided(BaseModel):
    """A batch's actions, stored (`lives/<life>/actions/<tick>-<batch>.json`), how many of each kind, and the
    pictures its posts ask for."""

    actions: ArtifactRef
    counts: dict[str, int]
    pictures: list[PictureAsk] = Field(default_factory=list)


class PostPictureRequest(PaidRequest):
    """One post's picture, on the image queue (the world's post-picture prompt, stored under the life)."""

    MODEL_KIND = "image"

    life_id: str
    ask: PictureAsk
    tick: int
    cast: ArtifactRef  # the world's visual style is the cast's


class ApplyRequest(BaseModel):
    life_id: str
    tick: int
    state: ArtifactRef
    batches: list[ArtifactRef]
    events: list[LifeEvent] = Field(default_factory=list)
    pictures: dict[str, ArtifactRef] = Field(default_factory=dict)  # post id → its picture, made this tick


class Applied(BaseModel):
    """The life after a tick: its stored state, the actions newly applied (by kind) and those already there."""

    state: ArtifactRef
    counts: dict[str, int]
    already: int = 0
    posts: int = 0


# --- the workflow's job, status and result ----------------------------------------------------------


class TickBudget(BaseModel):
    """What one tick may spend: its model calls and dollars (None: no limit beyond the life's budget)."""

    llm_calls: int | None = Field(default=None, ge=0)
    max_usd: float | None = Field(default=None, ge=0)


class LifeRunState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    BUDGET_EXHAUSTED = "budget_exhausted"
    COMPLETED = "completed"


class LifeStatus(BaseModel):
    """What the `status` query answers: the tick, the state, the actions so far by kind, the spend."""

    life_id: str
    world_id: str
    tick: int = 0  # the last tick completed
    ticks: int = 0  # the tick the life runs to
    state: LifeRunState = LifeRunState.RUNNING
    actions: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(ActionKind, 0))
    posts: int = 0  # posts in the life so far, the world's own included
    events: int = 0  # events injected so far
    calls: CallUsage = Field(default_factory=CallUsage)
    usage: Usage = Field(default_factory=Usage)
    spend: Spend | None = None
    budget_exhausted: bool = False
    skipped: int = 0  # characters a tick's budget left without a decision
    pictures: int = 0  # post pictures made so far
    reflections: int = 0  # reflections written so far
    note: str = ""  # why it is paused or stopped
    state_ref: ArtifactRef | None = None  # the life's stored state as of `tick`


class Carried(BaseModel):
    """What a life carries across continue-as-new: its status and where it is stored (never the posts)."""

    status: LifeStatus
    cast: ArtifactRef
    members: list[tuple[str, float]]
    pending: list[LifeEvent] = Field(default_factory=list)
    paused: bool = False


class LifeJob(BaseModel):
    world_id: str = Field(min_length=1, max_length=200)
    ticks: int = Field(default=24, ge=1, le=1000)
    tick: str = "1h"  # simulated time a tick stands for
    active_share: float = Field(default=0.3, gt=0, le=1)
    budget: Budget = Field(default_factory=Budget)  # calls and dollars over the whole life
    tick_budget: TickBudget = Field(default_factory=TickBudget)
    batch_size: int = Field(default=10, ge=1, le=50)  # characters decided by one model call
    feed_size: int = Field(default=8, ge=1, le=50)
    reflect_every: int = Field(default=4, ge=0, le=1000)  # ticks between reflections (0: none)
    memory_k: int = Field(default=4, ge=1, le=20)  # memories each decision recalls
    continue_every: int = Field(default=50, ge=1, le=1000)  # ticks per run before continue-as-new
    models: ModelChoice = Field(default_factory=ModelChoice)
    carried: Carried | None = None  # set by the life itself when it continues as new

    @field_validator("tick")
    @classmethod
    def _duration(cls, value: str) -> str:
        duration_s(value)
        return value


class LifeResult(BaseModel):
    life_id: str
    world_id: str
    state: LifeRunState
    status: LifeStatus

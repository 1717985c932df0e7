"""What the HTTP API takes and answers, beside the jobs themselves (`ImageJob`, `WorldJob`, `MemeJob`): the
request bodies are those jobs with the API's few extra fields, so CLI and API validate through one model."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, Field, HttpUrl
from pydantic.json_schema import SkipJsonSchema

from models.catalog import Catalog, ModelChoice
from models.endpoints import Kind
from models.image import ImageJob
from models.life import LifeJob
from models.meme import MemeJob
from models.usage import CostLimit, Price
from models.world import Budget, WorldJob

Pipeline = Literal["image", "world", "meme", "life"]  # the names of `models.pipelines.PIPELINES` (held equal by a test)
RunStatus = Literal["running", "completed", "failed", "cancelled", "terminated", "timed_out"]
EventType = Literal[
    "run.started",
    "run.progress",
    "iteration.completed",
    "character.created",
    "post.created",
    "image.created",
    "like.created",
    "repost.created",
    "follow.created",
    "follow.deleted",
    "tick.completed",
    "run.completed",
    "run.failed",
    "run.cancelled",
    "experiment.cell.completed",
    "experiment.completed",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
TERMINAL_EVENTS = ("run.completed", "run.failed", "run.cancelled")


VaryValues = Annotated[list[Any], Field(min_length=1, max_length=32)]


class RunOptions(BaseModel):
    """What a create may carry beside the job."""

    max_cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)  # the run's dollar budget
    webhook: HttpUrl | None = None  # deliveries signed with the tenant's secret (GET /v1/webhooks/secret)
    webhook_events: list[EventType] | None = None  # None: every event
    rerun_of: str | None = Field(default=None, max_length=200)  # the run this one was started again from
    # a matrix: the job under every combination of these fields' values (dotted paths, e.g. `models.image`), each
    # `repeat` times, as one experiment of one row (`starter.api.experiments.matrix`; it answers the experiment)
    vary: dict[str, VaryValues] | None = Field(default=None, min_length=1, max_length=8)
    repeat: int = Field(default=1, ge=1, le=10)


COST_RULE = "prices and per-call reservations are the server's: send max_cost_usd, the run's dollar budget"


def refused(rule: str, kind: Any = None) -> Any:
    """A job's field a request may not give: refused with `rule` (a 422 naming the field), left out of the schema."""

    def given(value: Any) -> None:
        if value is not None:
            raise ValueError(rule)
        return None

    return SkipJsonSchema[Annotated[kind, BeforeValidator(given)]]


# A request never carries a `CostLimit`: the server quotes one from `max_cost_usd` and its own prices
# (`starter.max_cost`), so a client cannot make its calls cheaper than they are.
ServerCost = refused(COST_RULE, CostLimit | None)
# A create never carries a branch's parent iterations: the branch route reads them from the parent run.
NoBranch = refused("a branch starts from an earlier run: POST /v1/runs/{id}/branch")
OneBranch = refused("a branch is one run: vary the parent, or branch again")
NotCarried = refused("only a life carries its state over")
OneLife = refused("a world has one life at a time: a life is not a matrix")


class RequestBudget(Budget):
    cost: ServerCost = None


class ImageRequest(ImageJob, RunOptions):
    cost: ServerCost = None
    branch: NoBranch = None


class BranchRequest(RunOptions):
    """`POST /v1/runs/{id}/branch`: a new image run from iteration `from_iteration` of the path's run, its
    iterations up to there reused; unset fields are the parent's (`max_iterations`: at least one more)."""

    from_iteration: int = Field(ge=1, le=20)
    feedback: str | None = Field(default=None, min_length=1, max_length=2000)  # for the refinement after N
    models: ModelChoice = Field(default_factory=ModelChoice)  # a kind unset: the parent's model for it
    threshold: int | None = Field(default=None, ge=0, le=100)
    max_iterations: int | None = Field(default=None, ge=2, le=20)
    rerun_of: SkipJsonSchema[None] = None  # the parent is `branch_of`
    vary: OneBranch = None
    repeat: SkipJsonSchema[Literal[1]] = 1
    parent: SkipJsonSchema[str] = ""  # the path's run (filled from it: part of the request's digest)


class BranchOf(BaseModel):
    """The run a branch started from, and from which of its iterations."""

    run: str
    from_iteration: int


class WorldRequest(WorldJob, RunOptions):
    budget: RequestBudget = Field(default_factory=RequestBudget)


class MemeRequest(MemeJob, RunOptions):
    cost: ServerCost = None


class LifeRequest(LifeJob, RunOptions):
    """`POST /v1/worlds/{id}/life`: the world is the path's (`world_id` is filled from it)."""

    world_id: SkipJsonSchema[str] = ""
    budget: RequestBudget = Field(default_factory=RequestBudget)
    carried: NotCarried = None
    vary: OneLife = None
    repeat: SkipJsonSchema[Literal[1]] = 1


class LifeEventRequest(BaseModel):
    """`POST /v1/worlds/{id}/events`: an event that enters every feed of the world's life at its next tick."""

    text: str = Field(min_length=1, max_length=500)


class RunUrls(BaseModel):
    run: str
    events: str
    result: str
    cancel: str
    temporal_ui: str


class RunCreated(BaseModel):
    id: str
    pipeline: Pipeline
    status: RunStatus
    urls: RunUrls


class RunView(BaseModel):
    """A run as `GET /v1/runs/{id}` shows it."""

    id: str
    pipeline: str
    status: RunStatus
    state: str  # the pipeline's own state, e.g. COMPLETED_WITH_ERRORS, or Temporal's status
    summary: str | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None
    progress: dict[str, Any] | None = None  # the pipeline's live status, when a worker answers
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None
    score: float | None = None
    budget_exhausted: bool = False
    failures: list[dict[str, Any]] = Field(default_factory=list)
    branch_of: BranchOf | None = None  # an image run branched from another's iteration
    urls: RunUrls


class RunPage(BaseModel):
    runs: list[RunView]
    next_cursor: str | None = None


class ModelView(BaseModel):
    """A catalog model as `GET /v1/models` lists it: OpenAI's model object (`id`, `object`, `owned_by`) and
    Atelier's `kinds`, `price` and the kinds it is the `default` of."""

    id: str
    object: Literal["model"] = "model"
    owned_by: str
    kinds: list[Kind]
    price: Price | None = None  # None: the price table's entry for the provider's model
    default: list[Kind] = Field(default_factory=list)


class ModelList(BaseModel):
    """`GET /v1/models` and `atelier models --json`: the catalog in OpenAI's list shape."""

    object: Literal["list"] = "list"
    data: list[ModelView]

    @classmethod
    def of(cls, catalog: Catalog) -> ModelList:
        return cls(data=[ModelView.model_validate(model.describe()) for model in catalog.models])


class Feedback(BaseModel):
    text: str = Field(min_length=1, max_length=2000)

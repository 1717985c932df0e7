"""What the studio shows of a run: its row in a list and the head of its page (views of the API's `RunView`),
and per pipeline (`PipelineSpec.view`) what its page shows, gathered from the run: its job, its live status (while
it runs) or its result, and what it has stored so far, used by the page and by its live part."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import Field
from temporalio.client import WorkflowExecution, WorkflowExecutionDescription

from kit.run_reading import MEMO_RERUN
from models.api import RunView
from models.catalog import KINDS, Catalog
from models.image import ImageJobResult, Iteration, LoopState, Refusal
from models.life import LifeResult, LifeStatus
from models.meme import MemeResult, MemeStatus
from models.pipelines import PIPELINES
from models.world import PHASES, WorldResult, WorldStatus
from starter.api.runs import view
from starter.api.service import Service
from starter.studio.life_data import LifeData, life_data
from starter.studio.runs_data import studio_runs
from starter.studio.world_data import WorldView, world_view


class RunRow(RunView):
    """A run as the studio lists it: the API's view of it, and how long it has taken."""

    @property
    def seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return ((self.closed_at or datetime.now(UTC)) - self.started_at).total_seconds()

    @property
    def running(self) -> bool:
        return self.status == "running"


class RunHead(RunRow):
    """What every run page says at its top: the run as listed, the job it was started with, and the run it was
    started again from."""

    job: dict[str, Any] = Field(default_factory=dict)
    rerun_of: str | None = None
    experiment: str | None = None  # the experiment it is a cell of (a pipeline's run has no other parent)
    models: dict[str, str] = Field(default_factory=dict)  # kind → the model that made its artifacts (`models_of`)

    @property
    def text(self) -> str:
        """The job's prompt or topic, in full."""
        spec = PIPELINES.get(self.pipeline)
        return str(self.job.get(spec.text_field, "")) if spec else ""


async def row_of(svc: Service, run: WorkflowExecution) -> RunRow:
    return RunRow(**dict(await view(svc, run)))


def models_of(catalog: Catalog, job: dict[str, Any]) -> dict[str, str]:
    """Kind → the model the run's job chose, else the catalog's default for that kind (marked so)."""
    chosen = job.get("models") or {}
    return {kind: chosen.get(kind) or f"{catalog.default(kind).id} (default)" for kind in KINDS}


async def head_of(svc: Service, described: WorkflowExecutionDescription) -> RunHead:
    row = await row_of(svc, described)
    job = await studio_runs(svc).job(described)
    rerun_of = await described.memo_value(MEMO_RERUN, None)
    return RunHead(
        **dict(row), job=job, rerun_of=rerun_of, experiment=described.parent_id, models=models_of(svc.catalog, job)
    )


@dataclass
class ImageView:
    iterations: list[Iteration] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    best: int | None = None
    phase: str = ""
    iteration: int = 0
    max_iterations: int = 0
    threshold: int = 0
    pending_feedback: list[str] = field(default_factory=list)
    stopped_because: str | None = None
    cost_usd: float = 0.0
    tokens: int = 0
    answered: bool = True  # False: the run is going and no worker answered its query this time

    @property
    def cards(self) -> list[tuple[str, Iteration | Refusal]]:
        """Scored and refused iterations, in the order they ran."""
        cards: list[tuple[str, Iteration | Refusal]] = [("iteration", it) for it in self.iterations]
        cards += [("refusal", r) for r in self.refusals]
        return sorted(cards, key=lambda card: card[1].number if card[0] == "iteration" else card[1].iteration)


async def image_view(svc: Service, described: WorkflowExecutionDescription) -> ImageView:
    result: ImageJobResult | None = await studio_runs(svc).result(described)
    if result is not None:
        best = result.best_iteration
        return ImageView(
            result.iterations,
            result.refusals,
            best,
            phase="DONE",
            iteration=len(result.iterations) + len(result.refusals),
            stopped_because=str(result.stopped_because),
            cost_usd=result.usage.estimated_cost_usd,
            tokens=result.usage.input_tokens + result.usage.output_tokens,
        )
    state: LoopState | None = await studio_runs(svc).status(described)
    if state is None:
        return ImageView(answered=False)
    best = max(state.iterations, key=lambda it: it.score).number if state.iterations else None
    return ImageView(
        state.iterations,
        state.refusals,
        best,
        phase=str(state.phase),
        iteration=state.iteration,
        max_iterations=state.max_iterations,
        threshold=state.threshold,
        pending_feedback=state.pending_feedback,
        cost_usd=state.usage.estimated_cost_usd,
        tokens=state.usage.input_tokens + state.usage.output_tokens,
    )


@dataclass
class WorldPage:
    world: WorldView
    status: WorldStatus | None
    phases: list[tuple[str, str, int]]  # name, state, percent done

    @property
    def failures(self) -> list[Any]:
        return self.status.failures if self.status else []


def _percent(status: WorldStatus, phase: str) -> int:
    state = status.phases.get(phase)
    counter = {"characters": status.characters, "character_details": status.characters, "posts": status.posts,
               "post_images": status.images, "avatars": status.characters}.get(phase)  # fmt: skip
    if str(state) == "COMPLETED":
        return 100
    if counter is None or not counter.planned:
        return 50 if str(state) == "IN_PROGRESS" else 0
    return min(100, round(100 * counter.created / counter.planned))


async def world_page(svc: Service, described: WorkflowExecutionDescription) -> WorldPage:
    runs = studio_runs(svc)
    result: WorldResult | None = await runs.result(described)
    status: WorldStatus | None = result.status if result is not None else await runs.status(described)
    phases = [(name, str(status.phases.get(name, "PENDING")), _percent(status, name)) for name in PHASES if status]
    return WorldPage(await world_view(svc.store, described.id, described.run_id or ""), status, phases)


@dataclass
class MemeView:
    status: MemeStatus | None
    result: MemeResult | None


async def meme_view(svc: Service, described: WorkflowExecutionDescription) -> MemeView:
    runs = studio_runs(svc)
    result: MemeResult | None = await runs.result(described)
    return MemeView(None if result else await runs.status(described), result)


@dataclass
class LifeView:
    status: LifeStatus | None  # live, or as the life ended
    data: LifeData | None = None  # its timeline, characters, graph and chart as of its last tick


async def life_view(svc: Service, described: WorkflowExecutionDescription) -> LifeView:
    runs = studio_runs(svc)
    result: LifeResult | None = await runs.result(described)
    status = result.status if result is not None else await runs.status(described)
    return LifeView(status, await life_data(svc.store, status) if status is not None else None)

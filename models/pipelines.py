"""The pipelines a client starts (image, world, meme), each declared once: its workflow and how it is read, how
it is asked for, shown, prioritised and named on the command line. Every list of pipelines is read from
`PIPELINES`: the API's routes, filters and caps, the Studio's forms, menus, pages and templates, the CLI's
commands and run types, the event feed's queries, the workers' workflows, the task-queue priorities.
`models.api.Pipeline`, the API's literal, names the same pipelines (tests/test_pipelines.py holds them equal).

A new pipeline is one `PipelineSpec` here, with what it names: its workflow (`workflows/`), job and request
models (`models/`, `models/api.py`), create route (`starter/api/creates.py`), CLI module (`starter/<name>_cmd.py`),
Studio view (`starter/studio/run_views.py`) and live template (`starter/studio/templates/`), and how its pictures
are found (`kit/pictures.py`).

It names each workflow by its interface (`models.workflow_interfaces`: the API loads no activity) and the module
that implements it (the worker's). No workflow module imports this one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from operator import attrgetter
from typing import Any

from pydantic import BaseModel

from models.api import ImageRequest, LifeRequest, MemeRequest, WorldRequest
from models.experiment import EXPERIMENT_PIPELINE, EXPERIMENT_TYPE
from models.image import ImageJobResult, LoopState
from models.life import LifeResult, LifeStatus
from models.meme import MemeResult, MemeStatus
from models.usage import CostLimit
from models.workflow_interfaces import ImageRefinementWorkflow, LifeWorkflow, MemeWorkflow, WorldWorkflow
from models.world import WorldResult, WorldStatus


@dataclass(frozen=True)
class PipelineSpec:
    """One pipeline, as everything that lists, starts, reads or shows its runs knows it."""

    name: str  # the API's `pipeline`, the AtelierPipeline search attribute, the CLI command, `/new/<name>`
    workflow: type  # the workflow's interface (`models.workflow_interfaces`): its name is the run's workflow type
    module: str  # the module of the workflow class the worker runs (`implementation()`)
    status_query: Callable[..., Any]  # its live-status query
    status_type: type[BaseModel]
    result_type: type[BaseModel]
    request: type[BaseModel]  # the API's create body: the job and the API's options
    text_field: str  # the job's prompt or topic: what the run is listed as
    path: str  # `POST /v1/<path>` creates one
    title: str  # the Studio's new-run page
    noun: str  # one run of it, as the Studio offers it ("Start one: an image")
    priority: int  # task-queue priority key: 1 goes first
    artifacts: str  # the store's folder of its runs (`<artifacts>/<run id>/…`)
    progress: tuple[str, ...]  # the status fields a `run.progress` event carries
    command: str  # the CLI module: `add_parser`, `run`, and `PIPELINE` for `status` and `result`
    view: str  # what its run page shows: a function of `starter/studio/run_views.py`
    live: str  # the template of its run page's live part
    pictures: str  # how its pictures are found among what a run stored: one of `kit.pictures.LAYOUTS`
    page: str = "run.html"  # the template of its run page
    budget: Callable[[Any], CostLimit | None] = attrgetter("cost")  # its job's dollar budget
    gallery: str | None = None  # the page a run writes beside its artifacts (`<artifacts>/<run id>/<gallery>`)
    form: bool = True  # the Studio has a new-run form for it (a world's life starts from the world's page)

    @property
    def workflow_type(self) -> str:
        return self.workflow.__name__

    def implementation(self) -> type:
        """The workflow class the worker runs (it imports its activities: never loaded by the API)."""
        return getattr(import_module(self.module), self.workflow_type)


# fmt: off
PIPELINES: dict[str, PipelineSpec] = {spec.name: spec for spec in (  # a few settings a line: the three side by side
    PipelineSpec(
        name="image", workflow=ImageRefinementWorkflow, status_query=ImageRefinementWorkflow.state,
        status_type=LoopState, result_type=ImageJobResult, request=ImageRequest, text_field="prompt", path="images",
        progress=("iteration", "max_iterations", "phase", "scores", "best_score", "pending_feedback"),
        title="New image run", noun="an image", priority=2, artifacts="runs", command="starter.image_cmd",
        view="image_view", live="image_live.html", page="image.html",  # the run page with its feedback box
        module="workflows.image_refinement", pictures="iterations",
    ),
    PipelineSpec(
        name="world", workflow=WorldWorkflow, status_query=WorldWorkflow.status,
        status_type=WorldStatus, result_type=WorldResult, request=WorldRequest, text_field="prompt", path="worlds",
        progress=("state", "world_name", "phases", "characters", "posts", "images", "budget_exhausted"),
        title="New world", noun="a world", priority=4, artifacts="worlds", command="starter.world_cmd",  # batch work
        view="world_page", live="world_live.html", page="world.html",  # the run page with its "Live" button
        module="workflows.world", pictures="world", budget=attrgetter("budget.cost"), gallery="index.html",
    ),
    PipelineSpec(
        name="meme", workflow=MemeWorkflow, status_query=MemeWorkflow.status,
        status_type=MemeStatus, result_type=MemeResult, request=MemeRequest, text_field="topic", path="memes",
        progress=("phase", "format", "drafts", "best_score"),
        title="New meme", noun="a meme", priority=3, artifacts="runs", command="starter.meme_cmd",
        view="meme_view", live="meme_live.html",
        module="workflows.meme", pictures="meme",
    ),
    PipelineSpec(  # a world's life: started at `POST /v1/worlds/{world_id}/life`, the world's id its text
        name="life", workflow=LifeWorkflow, status_query=LifeWorkflow.status,
        status_type=LifeStatus, result_type=LifeResult, request=LifeRequest, text_field="world_id",
        path="worlds/{world_id}/life", progress=("state", "tick", "ticks", "actions", "posts", "budget_exhausted"),
        title="A world's life", noun="a world's life", priority=4, artifacts="lives", command="starter.live_cmd",
        view="life_view", live="life_live.html", page="life.html",  # pause/resume/stop and "inject an event"
        module="workflows.life", pictures="none", budget=attrgetter("budget.cost"), form=False,
    ),
)}
# fmt: on
WORKFLOW_TYPES: dict[str, PipelineSpec] = {spec.workflow_type: spec for spec in PIPELINES.values()}
# What a tenant's runs list shows, by workflow type: the pipelines' runs and experiments (no pipeline of their own:
# one pipeline run per cell, `workflows.experiment`; its cells are listed under it, not beside it).
LISTED: dict[str, str] = {spec.workflow_type: spec.name for spec in PIPELINES.values()} | {
    EXPERIMENT_TYPE: EXPERIMENT_PIPELINE
}


def spec_of(workflow_type: str | None) -> PipelineSpec | None:
    """The pipeline a run of this workflow type belongs to (None: a conversation, a character, …)."""
    return WORKFLOW_TYPES.get(workflow_type or "")

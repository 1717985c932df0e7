"""The pipelines the API starts, each with its workflow, live status query and result type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from models.image import ImageJobResult, LoopState
from models.meme import MemeResult, MemeStatus
from models.world import WorldResult, WorldStatus
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.meme import MemeWorkflow
from workflows.world import WorldWorkflow


@dataclass(frozen=True)
class Pipeline:
    name: str
    workflow: Any  # the workflow class
    run: Any  # its run method, for start_workflow
    status_query: Any
    status_type: type[BaseModel]
    result_type: type[BaseModel]
    text_field: str  # the job's prompt or topic: the run's summary


PIPELINES: dict[str, Pipeline] = {
    "image": Pipeline(
        "image",
        ImageRefinementWorkflow,
        ImageRefinementWorkflow.run,
        ImageRefinementWorkflow.state,
        LoopState,
        ImageJobResult,
        "prompt",
    ),
    "world": Pipeline(
        "world", WorldWorkflow, WorldWorkflow.run, WorldWorkflow.status, WorldStatus, WorldResult, "prompt"
    ),
    "meme": Pipeline("meme", MemeWorkflow, MemeWorkflow.run, MemeWorkflow.status, MemeStatus, MemeResult, "topic"),
}
WORKFLOW_TYPES = {p.workflow.__name__: p for p in PIPELINES.values()}


def pipeline_of_type(workflow_type: str | None) -> Pipeline | None:
    return WORKFLOW_TYPES.get(workflow_type or "")

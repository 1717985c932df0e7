"""Schemas of the image refinement loop (prompt → generate → evaluate → refine)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, AliasChoices, BaseModel, Field, ValidationInfo, field_validator, model_validator

from models.artifacts import REFERENCE_PREFIX, ArtifactRef
from models.catalog import ModelChoice
from models.text import ModelOutput, Prompt
from models.usage import CostLimit, PaidRequest, Spend, Usage

Quality = Literal["auto", "low", "medium", "high"]
Size = Literal["auto", "1024x1024", "1024x1536", "1536x1024"]
Background = Literal["auto", "opaque", "transparent"]
ImageFormat = Literal["png", "jpeg", "webp"]

CONTENT_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class ImageOptions(BaseModel):
    """Rendering options passed to the image model (seed 004's CLI flags)."""

    quality: Quality = "high"
    size: Size = "1024x1024"
    background: Background = "transparent"  # unset: transparent, or opaque for jpeg (which has no alpha)
    format: ImageFormat = "png"

    @model_validator(mode="before")
    @classmethod
    def _background_for_format(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("background") is None and data.get("format") == "jpeg":
            return {**data, "background": "opaque"}
        return data


_UPLOADED = re.compile(rf"^{REFERENCE_PREFIX}/(?P<sha256>[0-9a-f]{{64}})\.(png|jpg|webp|gif)$")


def is_uploaded(ref: ArtifactRef) -> bool:
    """An artifact reference that names an uploaded reference image, under its own content address."""
    match = _UPLOADED.match(ref.key)
    return match is not None and match["sha256"] == ref.sha256


def is_http_url(ref: str) -> bool:
    parts = urlsplit(ref)
    return parts.scheme.lower() in {"http", "https"} and bool(parts.hostname)


REFERENCE_RULE = "a reference is an uploaded artifact or an http(s) URL (the CLI uploads local files)"
TRANSPARENT_RULE = "transparent background needs format png or webp"
RECORDED_RUN = "recorded_run"  # validation context: a workflow's input as an earlier version may have taken it


def is_reference(ref: ArtifactRef | str) -> bool:
    return (isinstance(ref, ArtifactRef) and is_uploaded(ref)) or (isinstance(ref, str) and is_http_url(ref))


def _reference(ref: ArtifactRef | str, info: ValidationInfo) -> ArtifactRef | str:
    """Never a path: the worker's disk is not the caller's (the CLI uploads local files and sends these).
    A workflow parses its input leniently (`RECORDED_RUN` context) and refuses under a patch: runs started
    before the rule replay as they ran (their store_references step refuses the path)."""
    if is_reference(ref) or (info.context or {}).get(RECORDED_RUN):
        return ref
    raise ValueError(REFERENCE_RULE)


# A reference image as a workflow gets it: an upload in the artifact store (key + sha256) or an http(s) URL.
Reference = Annotated[ArtifactRef | str, AfterValidator(_reference)]


class ImageJob(BaseModel):
    """Input of ImageRefinementWorkflow."""

    prompt: Prompt = Field(max_length=8000)
    references: list[Reference] = Field(default_factory=list, max_length=8)
    options: ImageOptions = Field(default_factory=ImageOptions)
    max_iterations: int = Field(default=4, ge=1, le=20)
    threshold: int = Field(default=85, ge=0, le=100)
    technical_weight: float = Field(default=0.25, ge=0, le=1)  # share of the technical score in each score
    # the technical score, queued behind a busy scoring worker and run; then fidelity alone, noted (with no
    # scoring worker polling, at once)
    scoring_wait_s: int = Field(default=300, ge=1, le=3600)
    cost: CostLimit | None = None  # a dollar budget for the whole run
    models: ModelChoice = Field(default_factory=ModelChoice)  # catalog ids per kind of call; unset: the defaults
    branch: ImageBranch | None = None  # a branch of an earlier run: its iterations up to one, reused (`ImageBranch`)

    @field_validator("options")
    @classmethod
    def _renderable(cls, options: ImageOptions, info: ValidationInfo) -> ImageOptions:
        """A JPEG has no alpha channel. Checked on the job, not on `ImageOptions`: the activities' requests
        carry options as runs took them, and a workflow parses its input leniently (`RECORDED_RUN`)."""
        if (
            options.background == "transparent"
            and options.format == "jpeg"
            and not (info.context or {}).get(RECORDED_RUN)
        ):
            raise ValueError(TRANSPARENT_RULE)
        return options


class StoreReferencesRequest(BaseModel):
    workflow_id: str = Field(validation_alias=AliasChoices("workflow_id", "run_id"))  # the image run
    references: list[ArtifactRef | str]  # checked again by the activity: a workflow may have been made by anyone


class GenerateImageRequest(PaidRequest):
    MODEL_KIND = "image"

    workflow_id: str = Field(validation_alias=AliasChoices("workflow_id", "run_id"))  # the image run
    iteration: int = Field(ge=1)
    prompt: str
    options: ImageOptions
    references: list[ArtifactRef] = Field(default_factory=list)
    previous_response_id: str | None = None


class GeneratedImage(BaseModel):
    image: ArtifactRef
    response_id: str
    provider: str
    note: str | None = None  # what the provider could not honour for this image


class EvaluateImageRequest(PaidRequest):
    MODEL_KIND = "eval"

    workflow_id: str = Field(validation_alias=AliasChoices("workflow_id", "run_id"))  # the image run
    iteration: int = Field(ge=1)
    prompt: str
    image: ArtifactRef


class Evaluation(ModelOutput):
    """The evaluator's verdict on one image: a 0–100 score and actionable feedback."""

    score: int = Field(ge=0, le=100)
    feedback: str = Field(min_length=1)


class ScoredEvaluation(Evaluation):
    provider: str


class RefinePromptRequest(PaidRequest):
    original_prompt: str
    current_prompt: str
    feedback: list[str]
    human_feedback: list[str] = Field(default_factory=list)


class RefinedPrompt(ModelOutput):
    prompt: str = Field(min_length=1)


class ProviderRefinedPrompt(RefinedPrompt):
    provider: str


class Phase(StrEnum):
    STARTING = "starting"
    REFERENCES = "references"
    GENERATING = "generating"
    EVALUATING = "evaluating"
    REFINING = "refining"
    DONE = "done"


class StopReason(StrEnum):
    THRESHOLD = "threshold"
    MAX_ITERATIONS = "max_iterations"
    CANCELLED = "cancelled"
    BUDGET_EXHAUSTED = "budget_exhausted"
    REFUSED = "refused"  # the provider's safety system refused every iteration's picture


class Refusal(BaseModel):
    """A picture the provider's safety system refused: the iteration still counts; the prompt is rewritten."""

    iteration: int
    prompt: str
    reason: str
    category: str


class Iteration(BaseModel):
    """One finished pass of the loop."""

    number: int
    prompt: str
    image: ArtifactRef
    response_id: str
    score: int  # fidelity and technical quality combined by the job's technical_weight
    feedback: str
    fidelity: int | None = None  # the evaluator's score
    technical: float | None = None  # the scoring queue's technical score
    technical_breakdown: dict[str, float] = Field(default_factory=dict)
    human_feedback: list[str] = Field(default_factory=list)
    note: str | None = None  # e.g. references the provider's fallback route could not carry
    model: str | None = None  # the catalog id of the model that made the picture (None: recorded before)
    eval_model: str | None = None  # and of the one that judged it
    reused_from: str | None = None  # the run that made it, when this run is a branch of it (nothing bought again)


class NoBranchPoint(ValueError):
    """The iteration a branch would start from is not one the parent run has a picture of."""


class ImageBranch(BaseModel):
    """Where a branched run starts (`POST /v1/runs/{id}/branch`): its parent's iterations up to `from_iteration`
    as the parent made them (pictures by claim check: keys and sha256), reused and never bought again. The loop
    goes on at `from_iteration + 1`: its first call refines iteration N's prompt from the evaluator's feedback on
    every reused iteration (and `feedback`), then generates from N's response id. Made by the API or the CLI from
    the parent's result or live state: the workflow reads nothing itself."""

    parent: str = Field(min_length=1)  # the parent run's workflow id
    from_iteration: int = Field(ge=1)
    iterations: list[Iteration] = Field(min_length=1)  # the parent's scored iterations 1..N, N last
    refusals: list[Refusal] = Field(default_factory=list)  # and its refused ones before N
    previous_response_id: str | None = None  # N's: the provider refines from it (None: another picture model now)
    feedback: list[str] = Field(default_factory=list)  # the human's notes for the refinement after N

    @classmethod
    def take(
        cls,
        parent: str,
        number: int,
        iterations: list[Iteration],
        refusals: list[Refusal],
        feedback: list[str],
        picture_model: str | None,
    ) -> ImageBranch:
        """The parent's iterations 1..`number` (marked reused); NoBranchPoint when `number` is not a scored
        iteration of it. N's response id is carried only to the model that made N (`picture_model`: the
        branch's picture model; a response id means nothing to another provider)."""
        made = {it.number: it for it in iterations}
        if (last := made.get(number)) is None:
            refused = any(r.iteration == number for r in refusals)
            raise NoBranchPoint(
                f"iteration {number} of {parent!r} "
                + ("was refused: it has no picture" if refused else "has no picture yet")
            )
        return cls(
            parent=parent,
            from_iteration=number,
            iterations=[
                it.model_copy(update={"reused_from": it.reused_from or parent})
                for it in iterations
                if it.number <= number
            ],
            refusals=[r for r in refusals if r.iteration < number],
            previous_response_id=last.response_id if picture_model in (None, last.model) else None,
            feedback=feedback,
        )


class LoopState(BaseModel):
    """What the `state` query returns while the loop runs."""

    iteration: int = 0
    max_iterations: int
    threshold: int
    phase: Phase = Phase.STARTING
    prompt: str
    scores: list[int] = Field(default_factory=list)
    best_score: int | None = None
    pending_feedback: list[str] = Field(default_factory=list)
    iterations: list[Iteration] = Field(default_factory=list)  # the finished iterations so far
    refusals: list[Refusal] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)  # tokens, images and estimated cost so far
    spend: Spend | None = None  # spent vs the dollar budget, when the run has one


class ImageJobResult(BaseModel):
    """Output of ImageRefinementWorkflow: artifact keys, never bytes."""

    workflow_id: str
    provider: str
    stopped_because: StopReason
    best_iteration: int | None  # None when every iteration was refused
    final_score: int | None
    iterations: list[Iteration]
    refusals: list[Refusal] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)  # tokens, images and estimated cost of the whole run
    spend: Spend | None = None  # spent vs the dollar budget, when the run has one
    budget_exhausted: bool = False

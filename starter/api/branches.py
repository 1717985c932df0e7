"""Branching an image run (`POST /v1/runs/{id}/branch`: `routes/branches.py`; the CLI's `branch`: `branch_cmd`):
a new image run that starts after iteration N of an earlier one, taking its iterations 1..N as they are
(`models.image.ImageBranch`: pictures by claim check, prompts, scores, feedback, N's response id), so nothing
the parent bought is bought again. The parent is read from its result, or its live state while it runs (a
running parent branches from its finished iterations); the workflow reads nothing itself. The child names its
parent in its memo (`RunView.branch_of`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kit.run_reading import MEMO_BRANCH, RunReader
from kit.storage import ArtifactStore
from models.api import BranchRequest, RunCreated
from models.catalog import Catalog, ModelChoice
from models.image import RECORDED_RUN, ImageBranch, ImageJob, Iteration, NoBranchPoint, Refusal
from models.pipelines import PIPELINES
from starter.api import creates
from starter.api.errors import Invalid, NoWorker
from starter.api.runs import owned, reader
from starter.api.service import Caller, Service

IMAGE = PIPELINES["image"]
FIRST = ("text", "image", "text")  # what a branch does before it can stop: refine, generate, evaluate


class BadBranch(ValueError):
    """What a branch cannot start from, naming the request's field (`from_iteration`, `max_iterations`, or
    `run`: the parent itself)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Parent:
    """The run branched from: its id, the job it ran and the iterations it has finished so far."""

    id: str
    job: ImageJob
    iterations: list[Iteration]
    refusals: list[Refusal]


async def read_parent(runs: RunReader, described: Any) -> Parent | None:
    """The parent as it stands: from its result, else from its live state (None: no worker answered);
    BadBranch when it is not an image run."""
    if described.workflow_type != IMAGE.workflow_type:
        raise BadBranch("run", f"{described.id!r} is not an image run: only an image run's iterations branch")
    job = ImageJob.model_validate(await runs.job(described), context={RECORDED_RUN: True})
    if (result := await runs.result(described)) is not None:
        return Parent(described.id, job, result.iterations, result.refusals)
    if (state := await runs.status(described)) is None:
        return None
    return Parent(described.id, job, state.iterations, state.refusals)


async def branch_job(
    store: ArtifactStore, catalog: Catalog, parent: Parent, ask: BranchRequest, cost: Any = None
) -> ImageJob:
    """The child's job: the parent's, with what `ask` changes (unset: the parent's; `max_iterations`: the
    parent's, or one past N when that leaves none) and the branch; BadBranch naming the field that cannot be."""
    number = ask.from_iteration
    models = ModelChoice(**(parent.job.models.model_dump() | ask.models.model_dump(exclude_none=True)))
    picture_model = models.image or catalog.default("image").id
    feedback = [ask.feedback.strip()] if ask.feedback and ask.feedback.strip() else []
    try:
        branch = ImageBranch.take(parent.id, number, parent.iterations, parent.refusals, feedback, picture_model)
    except NoBranchPoint as exc:
        raise BadBranch("from_iteration", str(exc)) from None
    for iteration in branch.iterations:
        if not await store.exists(iteration.image.key):
            raise BadBranch("from_iteration", f"iteration {iteration.number}'s picture is no longer stored")
    max_iterations = ask.max_iterations or max(parent.job.max_iterations, number + 1)
    if max_iterations <= number:
        raise BadBranch("max_iterations", f"must be more than from_iteration ({number}): a branch makes new iterations")
    changes = {"models": models, "max_iterations": max_iterations, "branch": branch, "cost": cost}
    if ask.threshold is not None:
        changes["threshold"] = ask.threshold
    return ImageJob.model_validate(parent.job.model_dump() | changes)


def parent_memo(parent_id: str, number: int) -> dict[str, Any]:
    """What the child's memo says of its parent (`kit.run_reading.RunReader.branch_of` reads it)."""
    return {MEMO_BRANCH: {"run": parent_id, "from_iteration": number}}


async def start(svc: Service, caller: Caller, parent_id: str, body: BranchRequest, key: str | None) -> RunCreated:
    """Start the branch the caller asks for: 404 for a run not theirs, 422 naming the field the parent cannot
    branch from, 503 when a running parent's worker does not answer; idempotent under `Idempotency-Key` as
    every create (the parent is part of the request's digest)."""
    _, described = await owned(svc, caller, parent_id)
    body = body.model_copy(update={"parent": parent_id})
    await creates.check(svc, caller, body)
    try:
        if (parent := await read_parent(reader(svc), described)) is None:
            raise NoWorker("no workflow worker answered for the parent run's iterations")
        job = await branch_job(svc.store, svc.catalog, parent, body)
    except BadBranch as exc:
        raise Invalid("path.run_id" if exc.field == "run" else f"body.{exc.field}", str(exc)) from None
    cost = creates.budget(svc, body, job.models, [job.options], len(job.references), FIRST)
    job = job.model_copy(update={"cost": cost})
    memo = parent_memo(parent_id, body.from_iteration)
    return await creates.start(svc, caller, IMAGE, job, body, key, memo=memo)

"""A meme's pictures: one per panel of its format, in parallel, each bounded by the image deadline."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.meme import MemeActivities
    from models.artifacts import ArtifactRef
    from models.meme import FORMATS, Draft, MemeFormat, MemeJob, SceneRequest, scene_size
    from models.usage import BudgetExhausted
    from workflows.budget import Ledger, metered_call
    from workflows.failures import failure_cause
    from workflows.options import image_call


async def scene_pictures(
    ledger: Ledger, job: MemeJob, meme_id: str, fmt: MemeFormat, draft: Draft
) -> tuple[list[ArtifactRef | None], str | None]:
    """Every picture of the format, in parallel; past the image deadline, a plain background instead."""
    spec = FORMATS[fmt]
    style = f", {job.style}" if job.style else ""
    if not ledger.afford(*["image"] * len(spec.scenes)):
        return [None] * len(spec.scenes), "budget exhausted before the pictures: rendered on a plain background"
    calls = [
        metered_call(
            ledger,
            MemeActivities.generate_scene,
            SceneRequest(
                meme_id=meme_id,
                index=index,
                prompt=f"{scene.subject}; {draft.scene}{style}; no text, no letters",
                size=scene_size(scene.box, spec.canvas),
            ),
            image_call(f"meme · picture for panel {index + 1}").with_options(
                schedule_to_close_timeout=timedelta(seconds=job.image_deadline_s)
            ),
        )
        for index, scene in enumerate(spec.scenes)
    ]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    scenes: list[ArtifactRef | None] = []
    failures: list[str] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and is_cancelled_exception(outcome):
            raise outcome
        if isinstance(outcome, (ActivityError, BudgetExhausted)):
            scenes.append(None)
            failures.append(failure_cause(outcome))
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            scenes.append(outcome)
    if not failures:
        return scenes, None
    return scenes, (
        f"image generation unavailable for {len(failures)} of {len(scenes)} pictures within "
        f"{job.image_deadline_s} s ({failures[0]}): rendered on a plain background"
    )

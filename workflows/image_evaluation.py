"""One iteration's score: the evaluator's fidelity ∥ the scoring queue's technical score, combined by the
job's weight (fidelity alone, noted, when the technical score is unavailable)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.image import ImageActivities
    from models.image import EvaluateImageRequest, GeneratedImage, ImageJob, Iteration, ScoredEvaluation
    from models.scoring import ImageScore, ImageScores, ScoreImagesRequest
    from models.usage import Metered
    from workflows.budget import Ledger, metered
    from workflows.failures import failure_cause
    from workflows.options import scoring_call, text_call
    from workflows.patches import SCORING_DEGRADES_PATCH
    from workflows.scoring import ScoringQueue


async def scored_iteration(
    ledger: Ledger,
    scoring: ScoringQueue,
    job: ImageJob,
    number: int,
    prompt: str,
    generated: GeneratedImage,
    human: list[str],
    step: str,
) -> Iteration:
    """The iteration `generated` makes, scored; `step` names its calls (`iteration 2/4`)."""
    workflow_id = workflow.info().workflow_id
    evaluation = metered(
        ledger,
        ImageActivities.evaluate_image,
        EvaluateImageRequest(workflow_id=workflow_id, iteration=number, prompt=prompt, image=generated.image),
        text_call(f"{step} · evaluate"),
    )
    if job.technical_weight == 0:
        judged, item, note = await evaluation, None, None
    else:
        judged, item, note = await _with_technical_score(evaluation, scoring, job, generated, step)
    verdict = judged.value
    weight = job.technical_weight if item else 0.0
    return Iteration(
        number=number,
        prompt=prompt,
        image=generated.image,
        response_id=generated.response_id,
        score=round((1 - weight) * verdict.score + weight * (item.score if item else 0)),
        feedback=verdict.feedback,
        fidelity=verdict.score,
        technical=item.score if item else None,
        technical_breakdown=item.breakdown if item else {},
        human_feedback=human,
        note="; ".join(n for n in (generated.note, note) if n) or None,
        eval_model=judged.model,
    )


async def _with_technical_score(
    evaluation: Awaitable[Metered[ScoredEvaluation]],
    scoring: ScoringQueue,
    job: ImageJob,
    generated: GeneratedImage,
    step: str,
) -> tuple[Metered[ScoredEvaluation], ImageScore | None, str | None]:
    """The evaluation ∥ the technical score: the verdict, the image's score, and a note when it is unavailable."""
    technical = scoring.execute(
        "score_images",
        ScoreImagesRequest(images=[generated.image]),
        result_type=ImageScores,
        **scoring_call(f"{step} · technical score", timedelta(seconds=job.scoring_wait_s)),
    )
    if not workflow.patched(SCORING_DEGRADES_PATCH.id):  # runs from before: a scoring failure failed the loop
        verdict, scores = await asyncio.gather(evaluation, technical)
        return verdict, scores.items[0], None
    verdict, scores = await asyncio.gather(evaluation, technical, return_exceptions=True)
    if isinstance(verdict, BaseException):
        raise verdict
    if isinstance(scores, ActivityError):  # no scoring worker, or scoring keeps failing
        return verdict, None, f"technical score unavailable ({failure_cause(scores)}): scored on fidelity alone"
    if isinstance(scores, BaseException):
        raise scores
    return verdict, scores.items[0], None

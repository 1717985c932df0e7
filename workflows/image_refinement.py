"""The agentic image loop: generate → evaluate → refine, until good enough or out of turns."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.image import ImageActivities
    from models.artifacts import ArtifactRef
    from models.image import (
        RECORDED_RUN,
        REFERENCE_RULE,
        EvaluateImageRequest,
        GeneratedImage,
        GenerateImageRequest,
        ImageJob,
        ImageJobResult,
        Iteration,
        LoopState,
        Phase,
        RefinePromptRequest,
        Refusal,
        StopReason,
        StoreReferencesRequest,
        is_reference,
    )
    from models.scoring import ImageScores, ScoreImagesRequest
    from models.usage import BudgetExhausted, Ledger
    from workflows import console
    from workflows.character import BUDGET_PATCH
    from workflows.failures import failure_cause, refusal
    from workflows.inputs import parse_input
    from workflows.metering import metered_call
    from workflows.options import image_call, scoring_call, storage_call, text_call
    from workflows.scoring import ScoringQueue


SCORING_DEGRADES_PATCH = "technical-score-optional"
REFUSAL_PATCH = "refused-picture-rewrites-the-prompt"
UPLOADS_PATCH = "references-are-uploads"  # runs from before took a worker path as a reference
ENDINGS = {
    StopReason.BUDGET_EXHAUSTED: "BUDGET_EXHAUSTED",
    StopReason.CANCELLED: "CANCELLED",
    StopReason.REFUSED: "REFUSED",
}


def refused_feedback(refusal: Refusal) -> str:
    """What the prompt writer is told about a refused picture."""
    return (
        f"The image provider's safety system refused this prompt ({refusal.category}): {refusal.reason}. Rewrite "
        "it so that it stays within the content policy while keeping its intent."
    )


@workflow.defn
class ImageRefinementWorkflow:
    def __init__(self) -> None:
        self._state: LoopState | None = None
        self._pending_feedback: list[str] = []
        self._iterations: list[Iteration] = []  # what the `state` query shows of the run so far
        self._refusals: list[Refusal] = []
        self._ledger = Ledger()  # tokens, images and cost of this run's model calls

    @workflow.query
    def state(self) -> LoopState | None:
        """Iteration, phase and scores so far (a copy: queries change nothing)."""
        if self._state is None:
            return None
        return self._state.model_copy(
            update={
                "pending_feedback": list(self._pending_feedback),
                "iterations": list(self._iterations),
                "refusals": list(self._refusals),
                "usage": self._ledger.usage,
                "spend": self._ledger.statement(),
            }
        )

    @workflow.signal
    def feedback(self, text: str) -> None:
        """Human in the loop: the next refinement must take this into account."""
        if text.strip():
            self._pending_feedback.append(text.strip())

    def _step(self, number: int, what: str) -> str:
        assert self._state
        return f"iteration {number}/{self._state.max_iterations} · {what}"

    def _show(self) -> None:
        """Current details and searchable cost/score, as of the last finished step."""
        state = self._state
        assert state
        spent = self._ledger.usage.estimated_cost_usd
        console.show(
            f"**iteration {state.iteration} of {state.max_iterations}** · {state.phase.value}",
            f"best score {state.best_score} (threshold {state.threshold})" if state.scores else "",
            f"spend ${spent:.4f}" + (f" of ${self._ledger.limit.max_usd:.2f}" if self._ledger.limit else ""),
        )
        console.record(cost_usd=spent, score=state.best_score if state.scores else None)

    async def _evaluate(
        self, job: ImageJob, workflow_id: str, number: int, prompt: str, image: ArtifactRef
    ) -> Iteration:
        """The evaluator's fidelity score ∥ the scoring queue's technical score, combined by weight.

        The returned iteration still lacks its response id and human feedback; the loop adds them.
        """
        evaluation = metered_call(
            self._ledger,
            ImageActivities.evaluate_image,
            EvaluateImageRequest(workflow_id=workflow_id, iteration=number, prompt=prompt, image=image),
            **text_call(self._step(number, "evaluate")),
        )
        item, note = None, None
        if job.technical_weight == 0:
            verdict = await evaluation
        else:
            technical = self._scoring.execute(
                "score_images",
                ScoreImagesRequest(images=[image]),
                result_type=ImageScores,
                **scoring_call(self._step(number, "technical score"), timedelta(seconds=job.scoring_wait_s)),
            )
            if not workflow.patched(SCORING_DEGRADES_PATCH):  # runs from before: a scoring failure failed the loop
                verdict, scores = await asyncio.gather(evaluation, technical)
            else:
                verdict, scores = await asyncio.gather(evaluation, technical, return_exceptions=True)
                if isinstance(verdict, BaseException):
                    raise verdict
                if isinstance(scores, ActivityError):  # no scoring worker, or scoring keeps failing
                    note = f"technical score unavailable ({failure_cause(scores)}): scored on fidelity alone"
                elif isinstance(scores, BaseException):
                    raise scores
            item = None if note else scores.items[0]  # type: ignore[union-attr]
        weight = job.technical_weight if item else 0.0
        return Iteration(
            note=note,
            number=number,
            prompt=prompt,
            image=image,
            response_id="",
            score=round((1 - weight) * verdict.score + weight * (item.score if item else 0)),
            feedback=verdict.feedback,
            fidelity=verdict.score,
            technical=item.score if item else None,
            technical_breakdown=item.breakdown if item else {},
        )

    async def _generate(self, request: GenerateImageRequest) -> GeneratedImage | Refusal:
        """One picture; a safety refusal is an outcome (runs before the patch failed on it)."""
        number = request.iteration
        try:
            return await metered_call(
                self._ledger, ImageActivities.generate_image, request, **image_call(self._step(number, "generate"))
            )
        except ActivityError as err:
            if (said := refusal(err)) is None or not workflow.patched(REFUSAL_PATCH):
                raise
            return Refusal(iteration=number, prompt=request.prompt, reason=said[0], category=said[1])

    async def _refine(self, job: ImageJob, number: int, prompt: str, human: list[str], feedback: list[str]) -> str:
        """The next iteration's prompt from the evaluator's (or a refusal's) feedback and the human's."""
        refined = await metered_call(
            self._ledger,
            ImageActivities.refine_prompt,
            RefinePromptRequest(
                original_prompt=job.prompt, current_prompt=prompt, feedback=feedback, human_feedback=human
            ),
            **text_call(self._step(number, "refine prompt")),
        )
        return refined.prompt

    @workflow.run
    async def run(self, raw: dict[str, Any]) -> ImageJobResult:
        job = parse_input(ImageJob, raw, {RECORDED_RUN: True})
        bad = next((n for n, ref in enumerate(job.references) if not is_reference(ref)), None)
        if bad is not None and workflow.patched(UPLOADS_PATCH):  # runs from before read paths (they replay so)
            raise ApplicationError(
                f"invalid ImageJob: references.{bad}: {REFERENCE_RULE}", type="InvalidInput", non_retryable=True
            )
        workflow_id = workflow.info().workflow_id
        self._ledger = Ledger(job.cost, settling=job.cost is not None and workflow.patched(BUDGET_PATCH))
        self._scoring = ScoringQueue()
        state = self._state = LoopState(max_iterations=job.max_iterations, threshold=job.threshold, prompt=job.prompt)
        iterations, refusals = self._iterations, self._refusals
        provider = "unknown"
        stopped = StopReason.MAX_ITERATIONS
        try:
            references: list[ArtifactRef] = []
            if job.references:
                state.phase = Phase.REFERENCES
                references = await workflow.execute_activity(
                    "store_references",  # by name: httpx and Pillow stay out of the workflow
                    StoreReferencesRequest(workflow_id=workflow_id, references=job.references),
                    result_type=list[ArtifactRef],
                    **storage_call(f"references · store {len(job.references)}"),
                )
            prompt, human, previous_response_id = job.prompt, [], None
            for number in range(1, job.max_iterations + 1):
                if not self._ledger.fits("image", "text"):  # an iteration: generate and evaluate
                    self._ledger.exhausted = True
                    if not iterations:
                        raise BudgetExhausted(f"the ${job.cost.max_usd:.4f} budget does not cover one iteration")  # type: ignore[union-attr]
                    stopped = StopReason.BUDGET_EXHAUSTED
                    break
                state.iteration, state.prompt, state.phase = number, prompt, Phase.GENERATING
                self._show()
                request = GenerateImageRequest(
                    workflow_id=workflow_id,
                    iteration=number,
                    prompt=prompt,
                    options=job.options,
                    references=references,
                    previous_response_id=previous_response_id,
                )
                generated = await self._generate(request)
                if isinstance(generated, Refusal):  # the iteration counts; the prompt is rewritten, never resent
                    refusals.append(generated)
                    if number == job.max_iterations:
                        break
                    if not self._ledger.fits("text", "image", "text"):
                        self._ledger.exhausted = True
                        stopped = StopReason.BUDGET_EXHAUSTED
                        break
                    state.phase = Phase.REFINING
                    prompt = await self._refine(job, number, prompt, [], [refused_feedback(generated)])
                    continue
                provider, previous_response_id = generated.provider, generated.response_id
                state.phase = Phase.EVALUATING
                iteration = await self._evaluate(job, workflow_id, number, prompt, generated.image)
                iteration.response_id, iteration.human_feedback = generated.response_id, human
                iteration.note = "; ".join(n for n in (generated.note, iteration.note) if n) or None
                iterations.append(iteration)
                state.scores.append(iteration.score)
                state.best_score = max(state.scores)
                self._show()
                if iteration.score >= job.threshold:
                    stopped = StopReason.THRESHOLD
                    break
                if number == job.max_iterations:
                    break
                if not self._ledger.fits("text", "image", "text"):  # refine, then the next iteration
                    self._ledger.exhausted = True
                    stopped = StopReason.BUDGET_EXHAUSTED
                    break
                state.phase = Phase.REFINING
                human, self._pending_feedback = self._pending_feedback, []
                prompt = await self._refine(job, number, prompt, human, [it.feedback for it in iterations])
        except BudgetExhausted:  # a call the provider found dearer than what was left (nothing was sent)
            if not iterations:
                raise
            stopped = StopReason.BUDGET_EXHAUSTED
        except (asyncio.CancelledError, Exception) as err:
            if not is_cancelled_exception(err) or not iterations:
                raise
            stopped = StopReason.CANCELLED
        if not iterations and refusals:
            stopped = StopReason.REFUSED
        state.phase = Phase.DONE
        self._show()
        console.record(state=ENDINGS.get(stopped, "COMPLETED"))
        best = max(iterations, key=lambda it: it.score) if iterations else None  # the earliest of equal scores
        return ImageJobResult(
            workflow_id=workflow_id,
            provider=provider,
            stopped_because=stopped,
            best_iteration=best.number if best else None,
            final_score=best.score if best else None,
            iterations=iterations,
            refusals=refusals,
            usage=self._ledger.usage,
            spend=self._ledger.statement(),
            budget_exhausted=stopped == StopReason.BUDGET_EXHAUSTED,
        )

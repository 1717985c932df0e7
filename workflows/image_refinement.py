"""The agentic image loop: generate → evaluate → refine, until good enough or out of turns."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.image import ImageActivities
    from models.artifacts import ArtifactRef
    from models.image import (
        RECORDED_RUN,
        REFERENCE_RULE,
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
    from models.usage import BudgetExhausted
    from workflows import console
    from workflows.budget import Ledger, metered_call
    from workflows.failures import safety_refusal
    from workflows.feedback import (
        FEEDBACK_CAP_PATCH,
        MAX_CHARS,
        MAX_NOTE_CHARS,
        MAX_NOTES,
        reservation_usd,
        with_note,
    )
    from workflows.image_evaluation import scored_iteration
    from workflows.inputs import parse_input
    from workflows.options import image_call, storage_call, text_call
    from workflows.scoring import ScoringQueue


REFUSAL_PATCH = "refused-picture-rewrites-the-prompt"
UPLOADS_PATCH = "references-are-uploads"  # runs from before took a worker path as a reference
ENDINGS = {
    StopReason.BUDGET_EXHAUSTED: "BUDGET_EXHAUSTED",
    StopReason.CANCELLED: "CANCELLED",
    StopReason.REFUSED: "REFUSED",
}


@dataclass
class Draft:
    """What the next iteration starts from: its prompt, the human feedback its prompt took in, and the
    previous picture's response id (the provider refines from it)."""

    prompt: str
    human: list[str] = field(default_factory=list)
    previous_response_id: str | None = None


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
        self._provider = "unknown"  # who made the pictures

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
        """Human in the loop: the next refinement must take this into account (the newest notes within
        `workflows.feedback`'s cap wait; runs from before `FEEDBACK_CAP_PATCH` kept every one)."""
        note = text.strip()
        if not note:
            return
        if not workflow.patched(FEEDBACK_CAP_PATCH):
            self._pending_feedback.append(note)
            return
        kept = with_note(self._pending_feedback, note)
        if dropped := len(self._pending_feedback) + 1 - len(kept):
            workflow.logger.warning(
                "feedback: %d note(s) dropped; the newest that fit wait (at most %d notes, %d characters, %d each)",
                dropped, MAX_NOTES, MAX_CHARS, MAX_NOTE_CHARS,
            )  # fmt: skip
        self._pending_feedback = kept

    def _step(self, number: int, what: str = "") -> str:
        """How the iteration's calls are named in the Temporal UI: `iteration 2/4 · generate`."""
        assert self._state
        step = f"iteration {number}/{self._state.max_iterations}"
        return f"{step} · {what}" if what else step

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
        console.set_search_attributes(cost_usd=spent, score=state.best_score if state.scores else None)

    async def _generate(self, request: GenerateImageRequest) -> GeneratedImage | Refusal:
        """One picture; a safety refusal is an outcome (runs before the patch failed on it)."""
        number = request.iteration
        try:
            return await metered_call(
                self._ledger, ImageActivities.generate_image, request, image_call(self._step(number, "generate"))
            )
        except ActivityError as err:
            if (said := safety_refusal(err)) is None or not workflow.patched(REFUSAL_PATCH):
                raise
            return Refusal(iteration=number, prompt=request.prompt, reason=said[0], category=said[1])

    async def _refine(self, job: ImageJob, number: int, prompt: str, human: list[str], feedback: list[str]) -> str:
        """The next iteration's prompt from the evaluator's (or a refusal's) feedback and the human's; the
        human's notes are reserved for beyond the call's quote (runs since `FEEDBACK_CAP_PATCH`)."""
        extra_usd = reservation_usd(self._ledger.limit, human) if workflow.patched(FEEDBACK_CAP_PATCH) else 0.0
        refined = await metered_call(
            self._ledger,
            ImageActivities.refine_prompt,
            RefinePromptRequest(
                original_prompt=job.prompt, current_prompt=prompt, feedback=feedback, human_feedback=human
            ),
            text_call(self._step(number, "refine prompt")),
            extra_usd,
        )
        return refined.prompt

    @workflow.run
    async def run(self, raw: dict[str, Any]) -> ImageJobResult:
        job = self._job(raw)
        self._ledger = Ledger.for_run(job.cost)
        self._scoring = ScoringQueue()
        self._state = LoopState(max_iterations=job.max_iterations, threshold=job.threshold, prompt=job.prompt)
        stopped = StopReason.MAX_ITERATIONS
        try:
            references = await self._references(job)
            draft = Draft(job.prompt)
            for number in range(1, job.max_iterations + 1):
                if (stop := await self._iteration(job, number, references, draft)) is not None:
                    stopped = stop
                    break
        except BudgetExhausted:  # a call the provider found dearer than what was left (nothing was sent)
            if not self._iterations:
                raise
            stopped = StopReason.BUDGET_EXHAUSTED
        except (asyncio.CancelledError, Exception) as err:
            if not is_cancelled_exception(err) or not self._iterations:
                raise
            stopped = StopReason.CANCELLED
        return self._finish(StopReason.REFUSED if self._refusals and not self._iterations else stopped)

    async def _iteration(
        self, job: ImageJob, number: int, references: list[ArtifactRef], draft: Draft
    ) -> StopReason | None:
        """Generate, score (or take the refusal), then rewrite `draft` for the next iteration; or why to stop."""
        if self._over_budget("image", "text"):  # an iteration: generate and evaluate
            if not self._iterations:
                raise BudgetExhausted(f"the ${job.cost.max_usd:.4f} budget does not cover one iteration")  # type: ignore[union-attr]
            return StopReason.BUDGET_EXHAUSTED
        state = self._state
        assert state
        state.iteration, state.prompt, state.phase = number, draft.prompt, Phase.GENERATING
        self._show()
        generated = await self._generate(self._request(job, number, references, draft))
        if isinstance(generated, Refusal):  # the iteration counts; the prompt is rewritten, never resent
            self._refusals.append(generated)
            human, feedback = [], [refused_feedback(generated)]
        else:
            self._provider, draft.previous_response_id = generated.provider, generated.response_id
            state.phase = Phase.EVALUATING
            step = self._step(number)
            iteration = await scored_iteration(
                self._ledger, self._scoring, job, number, draft.prompt, generated, draft.human, step
            )
            self._scored(iteration)
            if iteration.score >= job.threshold:
                return StopReason.THRESHOLD
            human, feedback = None, [it.feedback for it in self._iterations]
        if number == job.max_iterations:
            return StopReason.MAX_ITERATIONS
        if self._over_budget("text", "image", "text"):  # refine, then the next iteration
            return StopReason.BUDGET_EXHAUSTED
        state.phase = Phase.REFINING
        if human is None:  # after a scored picture, the refinement takes in the human's feedback too
            draft.human, self._pending_feedback = self._pending_feedback, []
            human = draft.human
        draft.prompt = await self._refine(job, number, draft.prompt, human, feedback)
        return None

    def _job(self, raw: dict[str, Any]) -> ImageJob:
        """The job, parsed as its run took it; a path as a reference refused (runs from before replay so)."""
        job = parse_input(ImageJob, raw, {RECORDED_RUN: True})
        bad = next((n for n, ref in enumerate(job.references) if not is_reference(ref)), None)
        if bad is not None and workflow.patched(UPLOADS_PATCH):
            raise ApplicationError(
                f"invalid ImageJob: references.{bad}: {REFERENCE_RULE}", type="InvalidInput", non_retryable=True
            )
        return job

    async def _references(self, job: ImageJob) -> list[ArtifactRef]:
        if not job.references:
            return []
        assert self._state
        self._state.phase = Phase.REFERENCES
        return await workflow.execute_activity(
            "store_references",  # by name: httpx and Pillow stay out of the workflow
            StoreReferencesRequest(workflow_id=workflow.info().workflow_id, references=job.references),
            result_type=list[ArtifactRef],
            **storage_call(f"references · store {len(job.references)}"),
        )

    def _request(self, job: ImageJob, number: int, references: list[ArtifactRef], draft: Draft):
        return GenerateImageRequest(
            workflow_id=workflow.info().workflow_id,
            iteration=number,
            prompt=draft.prompt,
            options=job.options,
            references=references,
            previous_response_id=draft.previous_response_id,
        )

    def _over_budget(self, *kinds: str) -> bool:
        """Whether the budget cannot cover these calls' worst case (and so is exhausted)."""
        if self._ledger.fits(*kinds):
            return False
        self._ledger.out_of_dollars = True
        return True

    def _scored(self, iteration: Iteration) -> None:
        assert self._state
        self._iterations.append(iteration)
        self._state.scores.append(iteration.score)
        self._state.best_score = max(self._state.scores)
        self._show()

    def _finish(self, stopped: StopReason) -> ImageJobResult:
        assert self._state
        self._state.phase = Phase.DONE
        self._show()
        console.set_search_attributes(state=ENDINGS.get(stopped, "COMPLETED"))
        iterations = self._iterations
        best = max(iterations, key=lambda it: it.score) if iterations else None  # the earliest of equal scores
        return ImageJobResult(
            workflow_id=workflow.info().workflow_id,
            provider=self._provider,
            stopped_because=stopped,
            best_iteration=best.number if best else None,
            final_score=best.score if best else None,
            iterations=iterations,
            refusals=self._refusals,
            usage=self._ledger.usage,
            spend=self._ledger.statement(),
            budget_exhausted=stopped == StopReason.BUDGET_EXHAUSTED,
        )

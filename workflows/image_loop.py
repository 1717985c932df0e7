"""One image run's loop, built once its job is parsed: generate → evaluate → refine, until good enough, out
of turns or out of budget. Holds what the run's `state` query shows, none of it ever half-made."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.image import ImageActivities
    from models.artifacts import ArtifactRef
    from models.image import (
        GeneratedImage,
        GenerateImageRequest,
        ImageBranch,
        ImageJob,
        ImageJobResult,
        Iteration,
        LoopState,
        Phase,
        RefinePromptRequest,
        Refusal,
        StopReason,
        StoreReferencesRequest,
    )
    from models.usage import BudgetExhausted, CallKind, Metered
    from workflows import console
    from workflows.budget import Ledger, metered, metered_call
    from workflows.failures import safety_refusal
    from workflows.feedback import reservation_usd
    from workflows.image_evaluation import scored_iteration
    from workflows.options import image_call, storage_call, text_call
    from workflows.patches import BRANCH_PATCH, FEEDBACK_CAP_PATCH, REFUSAL_PATCH
    from workflows.scoring import ScoringQueue

ENDINGS = {
    StopReason.BUDGET_EXHAUSTED: "BUDGET_EXHAUSTED",
    StopReason.CANCELLED: "CANCELLED",
    StopReason.REFUSED: "REFUSED",
}


@dataclass(frozen=True)
class Draft:
    """What an iteration starts from: its prompt, the human feedback its prompt took in, and the previous
    picture's response id (the provider refines from it)."""

    prompt: str
    human: list[str] = field(default_factory=list)
    previous_response_id: str | None = None


def refused_feedback(refusal: Refusal) -> str:
    """What the prompt writer is told about a refused picture."""
    return (
        f"The image provider's safety system refused this prompt ({refusal.category}): {refusal.reason}. Rewrite "
        "it so that it stays within the content policy while keeping its intent."
    )


class ImageLoop:
    """The run's loop and what it has made so far; `take_feedback` hands over the human's notes waiting for
    the next refinement (they arrive as signals, to the workflow)."""

    def __init__(self, job: ImageJob, take_feedback: Callable[[], list[str]]) -> None:
        self.job = job
        self.take_feedback = take_feedback
        self.ledger = Ledger.for_run(job.cost, job.models)  # this run's model calls: their models, usage and cost
        self.scoring = ScoringQueue()
        self.state = LoopState(max_iterations=job.max_iterations, threshold=job.threshold, prompt=job.prompt)
        self.iterations: list[Iteration] = []
        self.refusals: list[Refusal] = []
        self.provider = "unknown"  # who made the pictures

    def snapshot(self, pending_feedback: list[str]) -> LoopState:
        """Iteration, phase and scores so far (a copy: queries change nothing)."""
        return self.state.model_copy(
            update={
                "pending_feedback": list(pending_feedback),
                "iterations": list(self.iterations),
                "refusals": list(self.refusals),
                "usage": self.ledger.usage,
                "spend": self.ledger.statement(),
            }
        )

    async def run(self) -> ImageJobResult:
        """Iterations until one returns why to stop; a budget or a cancel that ends the loop after its first
        iteration is a result too."""
        stopped = StopReason.MAX_ITERATIONS
        try:
            references = await self._references()
            outcome, first = await self._start()
            for number in range(first, self.job.max_iterations + 1):
                if isinstance(outcome, StopReason):
                    break
                outcome = await self._iteration(number, references, outcome)
            if isinstance(outcome, StopReason):
                stopped = outcome
        except BudgetExhausted:  # a call the provider found dearer than what was left (nothing was sent)
            if not self.iterations:
                raise
            stopped = StopReason.BUDGET_EXHAUSTED
        except (asyncio.CancelledError, Exception) as err:
            if not is_cancelled_exception(err) or not self.iterations:
                raise
            stopped = StopReason.CANCELLED
        return self._finish(StopReason.REFUSED if self.refusals and not self.iterations else stopped)

    async def _start(self) -> tuple[Draft | StopReason, int]:
        """The first iteration's draft and number: the job's prompt at 1, or a branch's (runs since
        `BRANCH_PATCH`)."""
        branch = self.job.branch
        if branch is None or not workflow.patched(BRANCH_PATCH.id):
            return Draft(self.job.prompt), 1
        return await self._branched(branch), branch.from_iteration + 1

    async def _branched(self, branch: ImageBranch) -> Draft | StopReason:
        """The parent's iterations 1..N taken as they are (no call: reused, never bought again), then the
        refinement after N as the parent's loop would have made it (its threshold is not asked again: a
        branch is asked for more iterations), or why to stop first."""
        number = branch.from_iteration
        self.refusals.extend(branch.refusals)
        self.iterations.extend(branch.iterations)
        self.state.scores.extend(it.score for it in branch.iterations)
        self.state.best_score = max(self.state.scores)
        last = branch.iterations[-1]  # N
        self.state.iteration = number
        self.state.prompt = last.prompt
        self.state.phase = Phase.REFINING
        self._show()
        if (stop := self._stop_before_refining(number)) is not None:
            return stop
        feedback = [it.feedback for it in self.iterations]
        return await self._after_picture(number, last.prompt, feedback, branch.previous_response_id, branch.feedback)

    async def _iteration(self, number: int, references: list[ArtifactRef], draft: Draft) -> Draft | StopReason:
        """Generate, then score (or take the refusal); the next iteration's draft, or why to stop."""
        job = self.job
        if self._over_budget("image", "text"):  # an iteration: generate and evaluate
            if not self.iterations:
                raise BudgetExhausted(f"the ${job.cost.max_usd:.4f} budget does not cover one iteration")  # type: ignore[union-attr]
            return StopReason.BUDGET_EXHAUSTED
        self.state.iteration = number
        self.state.prompt = draft.prompt
        self.state.phase = Phase.GENERATING
        self._show()
        made = await self._generate(self._request(number, references, draft))
        if isinstance(made, Refusal):  # the iteration counts; the prompt is rewritten, never resent
            self.refusals.append(made)
            return await self._next_draft(number, draft, [refused_feedback(made)], None)
        generated = made.value
        self.provider = generated.provider
        self.state.phase = Phase.EVALUATING
        iteration = await scored_iteration(
            self.ledger, self.scoring, job, number, draft.prompt, generated, draft.human, self._step(number)
        )
        iteration.model = made.model
        self._scored(iteration)
        if iteration.score >= job.threshold:
            return StopReason.THRESHOLD
        return await self._next_draft(number, draft, [it.feedback for it in self.iterations], generated)

    async def _next_draft(
        self, number: int, draft: Draft, feedback: list[str], generated: GeneratedImage | None
    ) -> Draft | StopReason:
        """The prompt rewritten from `feedback` (after a scored picture, `generated`, from the human's notes
        waiting too), or why to stop first."""
        if (stop := self._stop_before_refining(number)) is not None:
            return stop
        self.state.phase = Phase.REFINING
        if generated is None:  # after a refusal: the draft's notes and previous picture stay
            return replace(draft, prompt=await self._refine(number, draft.prompt, [], feedback))
        return await self._after_picture(number, draft.prompt, feedback, generated.response_id)

    def _stop_before_refining(self, number: int) -> StopReason | None:
        """Why no iteration follows `number`: the last one, or a budget that cannot cover the next."""
        if number == self.job.max_iterations:
            return StopReason.MAX_ITERATIONS
        if self._over_budget("text", "image", "text"):  # refine, then the next iteration
            return StopReason.BUDGET_EXHAUSTED
        return None

    async def _after_picture(
        self, number: int, prompt: str, feedback: list[str], response_id: str | None, carried: Sequence[str] = ()
    ) -> Draft:
        """The next draft after a scored picture: its prompt refined with the human's notes (`carried`, then
        those waiting), refining from the picture's `response_id`."""
        human = [*carried, *self.take_feedback()]
        return Draft(await self._refine(number, prompt, human, feedback), human, response_id)

    async def _references(self) -> list[ArtifactRef]:
        job = self.job
        if not job.references:
            return []
        self.state.phase = Phase.REFERENCES
        return await workflow.execute_activity(
            "store_references",  # by name: httpx and Pillow stay out of the workflow
            StoreReferencesRequest(workflow_id=workflow.info().workflow_id, references=job.references),
            result_type=list[ArtifactRef],
            **storage_call(f"references · store {len(job.references)}"),
        )

    def _request(self, number: int, references: list[ArtifactRef], draft: Draft) -> GenerateImageRequest:
        return GenerateImageRequest(
            workflow_id=workflow.info().workflow_id,
            iteration=number,
            prompt=draft.prompt,
            options=self.job.options,
            references=references,
            previous_response_id=draft.previous_response_id,
        )

    async def _generate(self, request: GenerateImageRequest) -> Metered[GeneratedImage] | Refusal:
        """One picture and the model that made it; a safety refusal is an outcome (runs before the patch failed
        on it)."""
        number = request.iteration
        try:
            return await metered(
                self.ledger, ImageActivities.generate_image, request, image_call(self._step(number, "generate"))
            )
        except ActivityError as err:
            if (said := safety_refusal(err)) is None or not workflow.patched(REFUSAL_PATCH.id):
                raise
            return Refusal(iteration=number, prompt=request.prompt, reason=said[0], category=said[1])

    async def _refine(self, number: int, prompt: str, human: list[str], feedback: list[str]) -> str:
        """The next iteration's prompt from the evaluator's (or a refusal's) feedback and the human's; the
        human's notes are reserved for beyond the call's quote (runs since `FEEDBACK_CAP_PATCH`)."""
        extra_usd = reservation_usd(self.ledger.limit, human) if workflow.patched(FEEDBACK_CAP_PATCH.id) else 0.0
        refined = await metered_call(
            self.ledger,
            ImageActivities.refine_prompt,
            RefinePromptRequest(
                original_prompt=self.job.prompt, current_prompt=prompt, feedback=feedback, human_feedback=human
            ),
            text_call(self._step(number, "refine prompt")),
            extra_usd,
        )
        return refined.prompt

    def _over_budget(self, *kinds: CallKind) -> bool:
        """Whether the budget cannot cover these calls' worst case (and so is exhausted)."""
        return not self.ledger.afford(*kinds)

    def _step(self, number: int, what: str = "") -> str:
        """How the iteration's calls are named in the Temporal UI: `iteration 2/4 · generate`."""
        step = f"iteration {number}/{self.state.max_iterations}"
        return f"{step} · {what}" if what else step

    def _scored(self, iteration: Iteration) -> None:
        self.iterations.append(iteration)
        self.state.scores.append(iteration.score)
        self.state.best_score = max(self.state.scores)
        self._show()

    def _show(self) -> None:
        """Current details and searchable cost/score, as of the last finished step."""
        state = self.state
        spent = self.ledger.usage.estimated_cost_usd
        console.show(
            f"**iteration {state.iteration} of {state.max_iterations}** · {state.phase.value}",
            f"best score {state.best_score} (threshold {state.threshold})" if state.scores else "",
            f"spend ${spent:.4f}" + (f" of ${self.ledger.limit.max_usd:.2f}" if self.ledger.limit else ""),
        )
        console.set_search_attributes(cost_usd=spent, score=state.best_score if state.scores else None)

    def _finish(self, stopped: StopReason) -> ImageJobResult:
        self.state.phase = Phase.DONE
        self._show()
        console.set_search_attributes(state=ENDINGS.get(stopped, "COMPLETED"))
        iterations = self.iterations
        best = max(iterations, key=lambda it: it.score) if iterations else None  # the earliest of equal scores
        return ImageJobResult(
            workflow_id=workflow.info().workflow_id,
            provider=self.provider,
            stopped_because=stopped,
            best_iteration=best.number if best else None,
            final_score=best.score if best else None,
            iterations=iterations,
            refusals=self.refusals,
            usage=self.ledger.usage,
            spend=self.ledger.statement(),
            budget_exhausted=stopped == StopReason.BUDGET_EXHAUSTED,
        )

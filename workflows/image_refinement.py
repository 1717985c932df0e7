"""The agentic image loop: generate → evaluate → refine, until good enough or out of turns.

The workflow takes the human's feedback (a signal) and answers the `state` query; the loop itself, built
once the job is parsed, is `workflows.image_loop.ImageLoop`."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.image import RECORDED_RUN, REFERENCE_RULE, ImageJob, ImageJobResult, LoopState, is_reference
    from workflows.feedback import MAX_CHARS, MAX_NOTE_CHARS, MAX_NOTES, with_note
    from workflows.image_loop import ImageLoop
    from workflows.inputs import parse_input
    from workflows.patches import FEEDBACK_CAP_PATCH, UPLOADS_PATCH


@workflow.defn
class ImageRefinementWorkflow:
    def __init__(self) -> None:
        self._pending_feedback: list[str] = []
        self._loop: ImageLoop | None = None  # once the job is parsed

    @workflow.query
    def state(self) -> LoopState | None:
        """Iteration, phase and scores so far (a copy: queries change nothing)."""
        return None if self._loop is None else self._loop.snapshot(self._pending_feedback)

    @workflow.signal
    def feedback(self, text: str) -> None:
        """Human in the loop: the next refinement must take this into account (the newest notes within
        `workflows.feedback`'s cap wait; runs from before `FEEDBACK_CAP_PATCH` kept every one)."""
        note = text.strip()
        if not note:
            return
        if not workflow.patched(FEEDBACK_CAP_PATCH.id):
            self._pending_feedback.append(note)
            return
        kept = with_note(self._pending_feedback, note)
        if dropped := len(self._pending_feedback) + 1 - len(kept):
            workflow.logger.warning(
                "feedback: %d note(s) dropped; the newest that fit wait (at most %d notes, %d characters, %d each)",
                dropped, MAX_NOTES, MAX_CHARS, MAX_NOTE_CHARS,
            )  # fmt: skip
        self._pending_feedback = kept

    @workflow.run
    async def run(self, raw: dict[str, Any]) -> ImageJobResult:
        self._loop = ImageLoop(self._job(raw), self._take_feedback)
        return await self._loop.run()

    def _job(self, raw: dict[str, Any]) -> ImageJob:
        """The job, parsed as its run took it; a path as a reference refused (runs from before replay so)."""
        job = parse_input(ImageJob, raw, {RECORDED_RUN: True})
        bad = next((n for n, ref in enumerate(job.references) if not is_reference(ref)), None)
        if bad is not None and workflow.patched(UPLOADS_PATCH.id):
            raise ApplicationError(
                f"invalid ImageJob: references.{bad}: {REFERENCE_RULE}", type="InvalidInput", non_retryable=True
            )
        return job

    def _take_feedback(self) -> list[str]:
        """The notes waiting for the next refinement, taken (later ones wait for the one after)."""
        taken, self._pending_feedback = self._pending_feedback, []
        return taken

"""The meme pipeline: format → text → verify → score → refine → image → overlay → upload."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.meme import MemeActivities
    from models.artifacts import ArtifactRef
    from models.meme import (
        FORMATS,
        CachedMeme,
        CacheKeyRequest,
        Draft,
        FormatRequest,
        MemeFormat,
        MemeJob,
        MemeMetrics,
        MemePhase,
        MemeResult,
        MemeStatus,
        MemeText,
        Published,
        RenderRequest,
        TextRequest,
        verify,
    )
    from models.usage import BudgetExhausted
    from workflows import console
    from workflows.budget import Ledger, metered_call
    from workflows.failures import failure_cause, stop_if_cancelled
    from workflows.inputs import parse_input
    from workflows.meme_judging import judge
    from workflows.meme_pictures import scene_pictures
    from workflows.options import storage_call, text_call
    from workflows.scoring import ScoringQueue

VERIFY_FIXES = 2  # rewrites allowed for text that fails verification, on top of the refinements


@workflow.defn
class MemeWorkflow:
    def __init__(self) -> None:
        self._status = MemeStatus()
        self._metrics = MemeMetrics()
        self._ledger = Ledger()
        self._scoring = ScoringQueue()
        self._phase_started: datetime | None = None

    # --- queries -------------------------------------------------------------------------------
    @workflow.query
    def status(self) -> MemeStatus:
        """The phase the meme is in, drafts so far, best score and usage (a copy: queries change nothing)."""
        return self._status.model_copy(update={"usage": self._ledger.usage, "spend": self._ledger.statement()})

    @workflow.query
    def metrics(self) -> MemeMetrics:
        """Time per phase, refinements, scores and whether the cache answered."""
        return self._metrics

    def _enter(self, phase: MemePhase) -> None:
        """Close the current phase's clock (query and SDK metric), open the next one."""
        now = workflow.now()
        if self._phase_started is not None and self._status.phase != MemePhase.IDLE:
            name = self._status.phase.value
            ms = int((now - self._phase_started).total_seconds() * 1000)
            self._metrics.phase_ms[name] = self._metrics.phase_ms.get(name, 0) + ms
            meter = workflow.metric_meter().with_additional_attributes({"phase": name})
            meter.create_histogram("atelier_meme_phase_ms", "time spent in a meme phase", "ms").record(ms)
        self._status.phase, self._phase_started = phase, now
        status = self._status
        console.show(
            f"**meme** · {phase.value}" + (f" · {status.format.value}" if status.format else ""),
            f"drafts {status.drafts} · best score {status.best_score:.2f}" if status.best_score is not None else "",
            f"spend ${self._ledger.usage.estimated_cost_usd:.4f}",
        )

    # --- the process ---------------------------------------------------------------------------
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> MemeResult:
        job = parse_input(MemeJob, raw)
        meme_id = workflow.info().workflow_id
        self._ledger = Ledger.for_run(job.cost, job.models)
        try:
            result = await self._make(job, meme_id)
        except BaseException as err:
            self._enter(MemePhase.FAILED)
            console.set_search_attributes(
                state="CANCELLED" if is_cancelled_exception(err) else "FAILED",
                cost_usd=self._ledger.usage.estimated_cost_usd,
            )
            raise
        self._enter(MemePhase.COMPLETED)
        console.set_search_attributes(
            state="COMPLETED_WITH_ERRORS" if result.degraded or result.upload_error else "COMPLETED",
            cost_usd=self._ledger.usage.estimated_cost_usd,
            score=result.score,
        )
        result.metrics, result.usage, result.spend = self._metrics, self._ledger.usage, self._ledger.statement()
        result.budget_exhausted = self._ledger.out_of_dollars
        result.text_model, result.image_model = self._ledger.answered.get("text"), self._ledger.answered.get("image")
        meter = workflow.metric_meter()
        meter.create_counter("atelier_meme_cache", "meme cache lookups").with_additional_attributes(
            {"result": result.cache}
        ).add(1)
        meter.create_counter("atelier_meme_refinements", "meme text refinements").add(result.refinements)
        meter.create_histogram_float("atelier_meme_score", "final meme scores").record(result.score)
        return result

    async def _make(self, job: MemeJob, meme_id: str) -> MemeResult:
        requested = job.format if isinstance(job.format, str) else job.format.value
        lookup = await workflow.execute_activity_method(
            MemeActivities.cache_lookup,
            CacheKeyRequest(
                topic=job.topic,
                format=requested,
                style=job.style,
                read=job.use_cache,
                models=self._ledger.models,  # part of the cache key (none chosen: the worker's defaults)
            ),
            **storage_call("meme · cache lookup"),
        )
        if lookup.hit is not None:
            return await self._from_cache(job, meme_id, lookup.hit)
        fmt, reason = await self._choose_format(job)
        drafts, refinements, stopped = await self._write(job, fmt)
        valid = [d for d in drafts if not d.problems]
        best = max(valid, key=lambda d: d.score or 0.0)  # max keeps the earliest of equal scores
        published, degraded, upload_error = await self._picture(job, meme_id, fmt, best)
        result = MemeResult(
            meme_id=meme_id,
            topic=job.topic,
            format=fmt,
            format_reason=reason,
            panels=best.panels,
            score=best.score or 0.0,
            target_score=job.target_score,
            stopped_because=stopped,
            refinements=refinements,
            history=drafts,
            image=published.image,
            url=published.url,
            cache="miss" if job.use_cache else "bypassed",
            degraded=degraded,
            upload_error=upload_error,
            provider=lookup.provider,
            metrics=self._metrics,
        )
        if degraded is None and upload_error is None:  # only memes made as asked answer identical requests
            await self._save_to_cache(lookup.key, result)
        return result

    async def _choose_format(self, job: MemeJob) -> tuple[MemeFormat, str]:
        """The requested format, or the one the model picks for the topic; and why."""
        self._enter(MemePhase.SELECTING_FORMAT)
        if job.format == "auto":
            choice = await metered_call(
                self._ledger,
                MemeActivities.choose_format,
                FormatRequest(topic=job.topic, style=job.style),
                text_call("meme · choose format"),
            )
            fmt, reason = choice.format, choice.reason
        else:
            fmt, reason = MemeFormat(job.format), "requested"
        self._status.format = fmt
        return fmt, reason

    async def _picture(
        self, job: MemeJob, meme_id: str, fmt: MemeFormat, best: Draft
    ) -> tuple[Published, str | None, str | None]:
        """The meme as a picture: its scenes (a plain background when they cannot be made: the second value
        says why), the text rendered on them, and its public copy (the third value: why the upload failed)."""
        self._enter(MemePhase.GENERATING_IMAGE)
        scenes, degraded = await scene_pictures(self._ledger, job, meme_id, fmt, best)
        self._enter(MemePhase.POST_PROCESSING)
        rendered = await workflow.execute_activity(
            "render_meme",  # by name: Pillow stays out of the workflow
            RenderRequest(meme_id=meme_id, format=fmt, panels=best.panels, scenes=scenes),
            result_type=ArtifactRef,
            **storage_call(f"meme · render {fmt.value} with text"),
        )
        self._enter(MemePhase.UPLOADING)
        try:
            published = await workflow.execute_activity_method(
                MemeActivities.publish, rendered, **storage_call("meme · upload", 2)
            )
        except ActivityError as err:  # the meme exists (rendered); only its public copy is missing
            stop_if_cancelled(err)
            return Published(image=rendered, url=None), degraded, failure_cause(err)
        return published, degraded, None

    async def _save_to_cache(self, key: str, made: MemeResult) -> None:
        """Keep the meme for identical requests; a cache that cannot be written only costs a future hit."""
        cached = CachedMeme(
            key=key,
            format=made.format,
            format_reason=made.format_reason,
            panels=made.panels,
            score=made.score,
            history=made.history,
            image=made.image,
            provider=made.provider,
        )
        try:
            await workflow.execute_activity_method(
                MemeActivities.cache_save, cached, **storage_call("meme · save to cache")
            )
        except ActivityError as err:
            stop_if_cancelled(err)
            workflow.logger.warning("meme cache not saved: %s", err.cause or err)

    async def _from_cache(self, job: MemeJob, meme_id: str, hit: CachedMeme) -> MemeResult:
        self._metrics.cache_hit = True
        self._status.format = hit.format
        self._enter(MemePhase.UPLOADING)
        url = await workflow.execute_activity_method(
            MemeActivities.url, hit.image, **storage_call("meme · cached: link")
        )
        return MemeResult(
            meme_id=meme_id,
            topic=job.topic,
            format=hit.format,
            format_reason=hit.format_reason,
            panels=hit.panels,
            score=hit.score,
            target_score=job.target_score,
            stopped_because="cached",
            refinements=0,
            history=hit.history,
            image=hit.image,
            url=url,
            cache="hit",
            provider=hit.provider,
            metrics=self._metrics,
        )

    async def _write(self, job: MemeJob, fmt: MemeFormat) -> tuple[list[Draft], int, str]:
        """Write, verify and score drafts until one reaches the target or refinements run out."""
        spec = FORMATS[fmt]
        drafts: list[Draft] = []
        refinements = fixes = 0
        request = TextRequest(topic=job.topic, style=job.style, format=fmt, avoid=job.blocked_words)
        self._enter(MemePhase.GENERATING_TEXT)
        while True:
            what = f"meme · text draft {len(drafts) + 1}" + (" (refine)" if refinements else "")
            try:
                text: MemeText = await metered_call(self._ledger, MemeActivities.write_text, request, text_call(what))
            except BudgetExhausted:
                if not refinements:
                    raise
                return drafts, refinements, "budget_exhausted"
            self._enter(MemePhase.VERIFYING)
            draft = Draft(panels=text.panels, scene=text.scene, problems=verify(spec, text.panels, job.blocked_words))
            drafts.append(draft)
            self._status.drafts = len(drafts)
            if draft.problems:
                if fixes == VERIFY_FIXES:
                    problems = "; ".join(draft.problems)
                    raise ApplicationError(
                        f"the meme text failed verification {fixes + 1} times: {problems}",
                        type="MemeTextRejected",
                        non_retryable=True,
                    )
                fixes += 1
                feedback = "Fix these problems: " + "; ".join(draft.problems)
                self._enter(MemePhase.GENERATING_TEXT)
            else:
                draft, stopped = await self._score(job, fmt, draft, len(drafts), refinements)
                drafts[-1] = draft
                if stopped:
                    unjudged = draft.score is None  # the budget ran out before its judgement: the best scored is used
                    return drafts[:-1] if unjudged else drafts, refinements, stopped
                refinements += 1
                self._metrics.refinements = refinements
                feedback = draft.feedback
                self._enter(MemePhase.REFINING)
            request = request.model_copy(
                update={"attempt": request.attempt + 1, "previous": draft.panels, "feedback": feedback}
            )

    async def _score(
        self, job: MemeJob, fmt: MemeFormat, draft: Draft, number: int, refinements: int
    ) -> tuple[Draft, str | None]:
        """The verified draft, judged (as it came when the budget ran out before its judgement), and why writing
        stops now, or None to refine it."""
        self._enter(MemePhase.SCORING)
        try:
            draft = await judge(self._ledger, self._scoring, job, fmt, draft, number)
            self._metrics.scores.append(draft.score)  # type: ignore[arg-type]
            self._status.best_score = max(self._metrics.scores)
        except BudgetExhausted:
            if not refinements:
                raise
            return draft, "budget_exhausted"
        if draft.score is not None and draft.score >= job.target_score:
            return draft, "target_reached"
        if refinements >= job.max_refinements:
            return draft, "out_of_refinements"
        if not self._ledger.afford("text", "text"):  # a rewrite and its judgement
            return draft, "budget_exhausted"
        return draft, None

"""A world's life, tick by tick: one long-lived workflow per life. Each tick it draws the active characters
(weighted by their activity), ranks their feeds (one activity: on the scoring queue by MiniLM, else by shared
words), lets each batch of them decide one action each (one structured call per batch, paid and budgeted), makes
the pictures the tick's posts ask for (image calls, paid and within the life's image calls) and applies the
tick's actions to the life's stored state (one activity, idempotent by action id). Simulated time: a tick is a
step, never a sleep. Characters remember (`workflows.life_memory`): before deciding, each recalls what of its past
is most like what it reads, and its latest reflection; every `reflect_every` ticks the tick's characters reflect.

Pause, resume and stop (signals, each idempotent) take effect between ticks; an injected event enters every feed
at the next tick. A budget that refuses a call (the life's calls or dollars) pauses the life and says so. It
continues as new every `continue_every` ticks (or when Temporal suggests it), carrying its small state.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.life import LifeActivities
    from models.artifacts import ArtifactRef
    from models.life import (
        ApplyRequest,
        Decided,
        DecideRequest,
        LifeJob,
        LifeResult,
        LifeRunState,
        LifeStatus,
        OpenLifeRequest,
        PictureAsk,
        PostPictureRequest,
        RankRequest,
    )
    from models.usage import BudgetExhausted
    from workflows.budget import metered
    from workflows.failures import stop_if_cancelled
    from workflows.inputs import parse_input
    from workflows.life_memory import RECALL_WAIT, Remembering
    from workflows.life_run import LifeRun
    from workflows.options import image_call, scoring_call, storage_call, text_call
    from workflows.patches import LIFE_FEEDS_BY_MEANING_PATCH, LIFE_PICTURES_PATCH


@workflow.defn
class LifeWorkflow:
    def __init__(self) -> None:
        self._life: LifeRun | None = None  # once the job is parsed
        self._early: list[tuple[str, str]] = []  # signals that came before it was
        self._memory = Remembering()

    @workflow.query
    def status(self) -> LifeStatus | None:
        """The tick, the state, the actions so far by kind, calls and spend (a copy: queries change nothing)."""
        return None if self._life is None else self._life.snapshot()

    @workflow.signal
    def pause(self) -> None:
        self._signal("pause")

    @workflow.signal
    def resume(self) -> None:
        self._signal("resume")

    @workflow.signal
    def stop(self) -> None:
        self._signal("stop")

    @workflow.signal
    def inject_event(self, text: str) -> None:
        """An event from outside: it enters every feed at the next tick."""
        self._signal("inject", text)

    def _signal(self, name: str, text: str = "") -> None:
        if self._life is None:
            self._early.append((name, text))
        elif name == "inject":
            self._life.inject(text)
        else:
            getattr(self._life, name)()

    @workflow.run
    async def run(self, raw: dict[str, Any]) -> LifeResult:
        job = parse_input(LifeJob, raw)
        life_id = workflow.info().workflow_id
        life = self._life = LifeRun(job, life_id)
        for name, text in self._early:
            self._signal(name, text)
        if life.cast is None:
            opened = await workflow.execute_activity_method(
                LifeActivities.open_life,
                OpenLifeRequest(life_id=life_id, world_id=job.world_id),
                **storage_call(f"life · opening the world {job.world_id}"),
            )
            life.cast, life.members = opened.cast, opened.members
            life.status.tick = life.first_tick = opened.tick
            life.status.state_ref = opened.state
        life.refresh()
        while life.status.tick < job.ticks:
            await workflow.wait_condition(life.may_go_on)
            if life.stopped:
                break
            if not life.calls_left():
                life.exhausted(f"budget exhausted: all {job.budget.llm_calls} calls made")
                continue
            life.ticking = True
            await self._tick(life, life.status.tick + 1)
            life.ticking = False
            life.hold()
            if life.status.tick < job.ticks and self._time_to_continue(life):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(job.model_copy(update={"carried": life.carried()}).model_dump(mode="json"))
        if not life.stopped:
            life.status.state, life.status.note = LifeRunState.COMPLETED, ""
        life.refresh()
        return LifeResult(life_id=life_id, world_id=job.world_id, state=life.status.state, status=life.snapshot())

    def _time_to_continue(self, life: LifeRun) -> bool:
        lived = life.status.tick - life.first_tick
        return lived >= life.job.continue_every or workflow.info().is_continue_as_new_suggested()

    async def _tick(self, life: LifeRun, tick: int) -> None:
        job, status = life.job, life.status
        assert life.cast is not None and status.state_ref is not None
        active = life.draw()
        events, life.pending = life.pending, []
        feeds = await self._feeds(
            RankRequest(
                life_id=status.life_id,
                tick=tick,
                cast=life.cast,
                state=status.state_ref,
                active=active,
                events=events,
                feed_size=job.feed_size,
            )
        )
        memory = await self._memory.recall(life, tick, active, feeds)
        batches = [active[i : i + job.batch_size] for i in range(0, len(active), job.batch_size)]
        allowed, left = life.calls_allowed(), life.calls_left()
        decisions = []
        for number, names in enumerate(batches[:allowed]):
            life.count_call()
            request = DecideRequest(
                life_id=status.life_id,
                tick=tick,
                batch=number,
                usernames=names,
                cast=life.cast,
                feeds=feeds,
                memory=memory,
            )
            decisions.append(self._decide(life, request))
        decided = [d for d in await asyncio.gather(*decisions) if d is not None]
        status.skipped += sum(len(names) for names in batches[allowed:])
        pictures: dict[str, ArtifactRef] = {}
        if workflow.patched(LIFE_PICTURES_PATCH.id):
            pictures = await self._pictures(life, tick, [ask for d in decided for ask in d.pictures])
        applied = await workflow.execute_activity_method(
            LifeActivities.apply_actions,
            ApplyRequest(
                life_id=status.life_id,
                tick=tick,
                state=status.state_ref,
                batches=[d.actions for d in decided],
                events=events,
                pictures=pictures,
            ),
            **storage_call(f"life · applying tick {tick}"),
        )
        life.ticked(tick, applied.counts, applied.posts, applied.state)
        if memory is not None:  # within what the tick's budget and the life's leave after the decisions
            room = min(allowed - len(decisions), life.calls_left())
            await self._memory.reflect(life, tick, active, memory, room)
        if len(batches) > left:  # the life's calls ran out (a tick's own limit only leaves characters idle)
            life.exhausted(f"budget exhausted: {status.calls.llm_calls} of {job.budget.llm_calls} calls made")
        elif life.ledger.out_of_dollars:
            life.exhausted(f"budget exhausted: ${life.ledger.usage.estimated_cost_usd:.4f} spent")

    async def _feeds(self, request: RankRequest) -> ArtifactRef:
        """The tick's feeds: on the scoring queue (how alike by MiniLM), or by shared words on the storage queue
        when no scoring worker polls (or it kept failing), as memory is recalled."""
        summary = f"life · feeds of tick {request.tick} ({len(request.active)} characters)"
        if workflow.patched(LIFE_FEEDS_BY_MEANING_PATCH.id):
            try:
                return await self._memory.scoring.execute(
                    "rank_feeds_by_meaning", request, result_type=ArtifactRef, **scoring_call(summary, RECALL_WAIT)
                )
            except ActivityError as err:
                stop_if_cancelled(err)
                summary += " by shared words"
        return await workflow.execute_activity_method(LifeActivities.rank_feeds, request, **storage_call(summary))

    async def _pictures(self, life: LifeRun, tick: int, asks: list[PictureAsk]) -> dict[str, ArtifactRef]:
        """The pictures the tick's posts ask for, at once, within the life's image calls (and its dollars): a post
        past them, refused or failed goes without one; the tick goes on."""
        assert life.cast is not None
        calls = []
        for ask in asks[: life.images_left()]:
            life.count_image()
            calls.append(self._picture(life, tick, ask))
        made = await asyncio.gather(*calls)
        pictures = {post: ref for post, ref in made if ref is not None}
        life.status.pictures += len(pictures)
        return pictures

    async def _picture(self, life: LifeRun, tick: int, ask: PictureAsk) -> tuple[str, ArtifactRef | None]:
        assert life.cast is not None
        request = PostPictureRequest(life_id=life.status.life_id, ask=ask, tick=tick, cast=life.cast)
        try:
            made = await metered(
                life.ledger, LifeActivities.post_picture, request, image_call(f"life · picture of post {ask.post}")
            )
        except BudgetExhausted:
            return ask.post, None
        except ActivityError as err:
            stop_if_cancelled(err)
            life.status.note = f"tick {tick} picture of {ask.post} failed: {err.cause or err}"
            return ask.post, None
        return ask.post, made.value

    async def _decide(self, life: LifeRun, request: DecideRequest) -> Decided | None:
        """One batch's decisions (None: the budget refused it, or it failed for good: its characters do nothing)."""
        summary = f"life · tick {request.tick} · decisions of {len(request.usernames)} characters"
        try:
            return (await metered(life.ledger, LifeActivities.decide_actions, request, text_call(summary))).value
        except BudgetExhausted:
            return None
        except ActivityError as err:
            stop_if_cancelled(err)
            life.status.note = f"tick {request.tick} batch {request.batch} failed: {err.cause or err}"
            return None

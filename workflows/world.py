"""A whole world from one prompt: description → world images ∥ character batches → one
CharacterWorkflow per character (bounded fan-out) → manifest and gallery.

The world's call budget is shared out: each character is started with an allowance taken from
what is left, and what it did not spend flows back to the characters started after it.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.world import WorldActivities
    from models.artifacts import ArtifactRef
    from models.usage import BudgetExhausted
    from models.world import (
        CharacterResult,
        CharacterSeed,
        Failure,
        PhaseState,
        ProgressDelta,
        WorldImageRequest,
        WorldJob,
        WorldManifestRequest,
        WorldPromptRequest,
        WorldResult,
        WorldState,
        WorldStatus,
        format_world,
    )
    from workflows import console
    from workflows.budget import metered_call
    from workflows.casting import Casting
    from workflows.character_runs import CharacterRuns
    from workflows.failures import cancel_started, failure, stop_if_cancelled
    from workflows.inputs import parse_input
    from workflows.options import image_call, storage_call, text_call
    from workflows.world_accounts import WorldAccounts
    from workflows.world_context import WorldContext

IMAGE_PHASES = ("world_images", "avatars", "post_images")


@workflow.defn
class WorldWorkflow:
    def __init__(self) -> None:
        self._status: WorldStatus | None = None
        self._accounts = WorldAccounts()  # call and dollar budgets: own calls, running and finished characters
        self._cast: list[str] = []  # usernames in the order the batches made them
        self._images: dict[str, ArtifactRef | None] = {"background": None, "icon": None}  # made so far
        self._results: list[CharacterResult] = []  # characters ended so far

    # --- status ----------------------------------------------------------------------------------
    @workflow.query
    def status(self) -> WorldStatus | None:
        """The generation status, with calls, usage and spend as of now (a copy: queries change nothing)."""
        return None if self._status is None else self._status.model_copy(update=self._totals())

    @workflow.signal
    def progress(self, delta: ProgressDelta) -> None:
        st = self._status
        if st is None:
            return
        st.characters.created += delta.characters_created
        st.posts.planned += delta.posts_planned
        st.posts.created += delta.posts_created
        st.images.planned += delta.images_planned
        st.images.created += delta.images_created
        self._accounts.report(delta)
        self._refresh_calls()

    def _totals(self) -> dict[str, Any]:
        calls, usage, spend = self._accounts.totals()
        return {"calls": calls, "usage": usage, "spend": spend, "budget_exhausted": self._accounts.exhausted}

    def _refresh_calls(self) -> None:
        """Totals into the status, and the status into the run's current details."""
        st = self._status
        assert st
        for name, value in self._totals().items():
            setattr(st, name, value)
        working = [name.replace("_", " ") for name, state in st.phases.items() if state == PhaseState.IN_PROGRESS]
        console.show(
            f"**{st.world_name or 'world'}** · {st.state.value}" + (f" · {', '.join(working)}" if working else ""),
            f"characters {st.characters.created} of {st.characters.planned} · posts {st.posts.created} of "
            f"{st.posts.planned} · images {st.images.created} of {st.images.planned}",
            f"spend ${st.usage.estimated_cost_usd:.4f}" + (f" of ${st.spend.max_usd:.2f}" if st.spend else ""),
            f"{len(st.failures)} failure(s)" if st.failures else "",
        )

    def _mark_phase(self, name: str, state: PhaseState) -> None:
        assert self._status
        self._status.phases[name] = state

    # --- the process -----------------------------------------------------------------------------
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> WorldResult:
        job = parse_input(WorldJob, raw)
        world_id = workflow.info().workflow_id
        self._accounts = WorldAccounts.for_run(job.budget)
        st = self._status = WorldStatus(world_id=world_id, budget=job.budget)
        if not job.images:
            for name in IMAGE_PHASES:
                self._mark_phase(name, PhaseState.COMPLETED)
        self._mark_phase("world_description", PhaseState.IN_PROGRESS)
        try:
            if not self._accounts.count("text"):
                raise BudgetExhausted("the call budget allows no LLM call")
            described = await metered_call(
                self._accounts.ledger,
                WorldActivities.describe_world,
                WorldPromptRequest(world_id=world_id, prompt=job.prompt),
                text_call("world · description"),
            )
        except (ActivityError, BudgetExhausted):
            self._mark_phase("world_description", PhaseState.FAILED)
            st.state = WorldState.FAILED
            console.set_search_attributes(state=st.state.value)
            raise
        self._mark_phase("world_description", PhaseState.COMPLETED)
        world = described.world
        st.world_name = world.name
        ctx = WorldContext(job, world_id, format_world(world), world.visual_style, world.name, described.artifact)
        try:
            tasks = [self._characters(ctx)]
            if job.images:
                tasks.append(self._world_images(ctx))
            await asyncio.gather(*tasks)
        except BaseException as err:
            if not is_cancelled_exception(err):
                raise
            st.state = WorldState.CANCELLED
            await self._finish(ctx)
            raise
        for name in ("character_details", "avatars", "posts", "post_images"):
            if st.phases[name] == PhaseState.IN_PROGRESS:
                self._mark_phase(name, PhaseState.COMPLETED)
        self._refresh_calls()
        if st.budget_exhausted:
            st.failures.append(Failure(step="budget", error="budget exhausted: the world is incomplete"))
        st.state = WorldState.COMPLETED_WITH_ERRORS if st.failures else WorldState.COMPLETED
        return await self._finish(ctx)

    async def _world_images(self, ctx: WorldContext) -> None:
        st = self._status
        assert st
        self._mark_phase("world_images", PhaseState.IN_PROGRESS)
        st.images.planned += 2

        async def one(kind: str) -> None:
            made = await self._world_image(ctx, kind)
            if isinstance(made, Failure):
                st.failures.append(made)
            else:
                self._images[kind] = made
                st.images.created += 1
            self._refresh_calls()

        await asyncio.gather(one("background"), one("icon"))
        done = any(self._images.values())
        self._mark_phase("world_images", PhaseState.COMPLETED if done else PhaseState.FAILED)

    async def _world_image(self, ctx: WorldContext, kind: str) -> ArtifactRef | Failure:
        if not self._accounts.count("image"):
            return Failure(step=f"world/{kind}", error="budget exhausted")
        try:
            return await metered_call(
                self._accounts.ledger,
                WorldActivities.world_image,
                WorldImageRequest(world_id=ctx.world_id, kind=kind, world_text=ctx.world_text, visual_style=ctx.style),
                image_call(f"world · {kind} image"),
            )
        except BudgetExhausted as err:
            self._accounts.count("image", -1)  # not made
            return failure(f"world/{kind}", err)
        except ActivityError as err:
            stop_if_cancelled(err)
            return failure(f"world/{kind}", err)

    async def _characters(self, ctx: WorldContext) -> None:
        """Character batches in sequence (each sees the cast so far); each character starts at once."""
        st = self._status
        assert st
        self._mark_phase("characters", PhaseState.IN_PROGRESS)
        casting = Casting(ctx, self._accounts)
        runs = CharacterRuns(ctx, self._accounts)
        running: list[asyncio.Task[None]] = []
        job = ctx.job
        try:
            for index in range(math.ceil(job.characters / job.character_batch_size)):
                made = await casting.batch(index)
                st.failures += made.failures
                st.duplicates_regenerated += made.regenerated
                if made.last:
                    break
                for seed in made.seeds:
                    self._cast.append(seed.username)
                    st.characters.planned += 1
                    st.posts.planned += seed.posts_count
                    st.images.planned += 1 if job.images else 0
                    running.append(asyncio.create_task(self._character(runs, seed)))
                self._refresh_calls()
        except BaseException as err:  # cancelled while casting: the characters already started stop too
            await cancel_started(running, err)
            raise
        self._mark_phase("characters", PhaseState.COMPLETED if casting.cast else PhaseState.FAILED)
        await asyncio.gather(*running)
        if st.characters.planned and not st.characters.created:
            self._mark_phase("character_details", PhaseState.FAILED)

    async def _character(self, runs: CharacterRuns, seed: CharacterSeed) -> None:
        """One character through the fan-out, once a slot is free and its share funded; its outcome into the
        world's status."""
        st = self._status
        assert st
        result = None
        async with runs.slots:
            if (share := await runs.fund(seed)) is None:
                st.failures.append(Failure(step=seed.username, error="budget exhausted: not generated"))
            else:
                self._characters_started(runs.ctx.job.images)
                result = await runs.run(seed, share)
        self._refresh_calls()
        if result is None:
            return
        console.set_search_attributes(cost_usd=st.usage.estimated_cost_usd)
        st.failures += result.failures
        if result.consistency is not None:
            st.consistency[seed.username] = result.consistency
        self._results.append(result)

    def _characters_started(self, images: bool) -> None:
        """The phases characters work in are in progress once the first one starts."""
        assert self._status
        for name in ("character_details", "posts") + (("avatars", "post_images") if images else ()):
            if self._status.phases[name] == PhaseState.PENDING:
                self._mark_phase(name, PhaseState.IN_PROGRESS)

    async def _finish(self, ctx: WorldContext) -> WorldResult:
        st = self._status
        assert st
        self._refresh_calls()
        order = {name: i for i, name in enumerate(self._cast)}
        manifests = [r.manifest for r in sorted(self._results, key=lambda r: order[r.username]) if r.manifest]
        manifest = gallery = None
        try:
            manifest, gallery = await self._write_manifest(ctx, manifests)
        except ActivityError as err:  # storage is failing for good: report it, keep the world's state
            st.failures.append(failure("manifest", err))
            if st.state == WorldState.COMPLETED:
                st.state = WorldState.COMPLETED_WITH_ERRORS
        self._refresh_calls()
        console.set_search_attributes(state=st.state.value, cost_usd=st.usage.estimated_cost_usd)
        return WorldResult(world_id=ctx.world_id, state=st.state, manifest=manifest, gallery=gallery, status=st)

    async def _write_manifest(self, ctx: WorldContext, manifests: list[ArtifactRef]) -> list[ArtifactRef]:
        st = self._status
        assert st
        return await workflow.execute_activity_method(
            WorldActivities.write_world_manifest,
            WorldManifestRequest(
                world_id=ctx.world_id,
                prompt=ctx.job.prompt,
                state=st.state,
                world=ctx.description,
                world_name=ctx.name,
                background=self._images["background"],
                icon=self._images["icon"],
                characters=manifests,
                failures=st.failures,
                calls=st.calls,
                usage=st.usage,
                consistency=st.consistency,
            ),
            **storage_call(f"world · manifest and gallery of {len(manifests)} characters"),
        )

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
    from models.usage import BudgetExhausted, Metered
    from models.world import (
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
    from workflows.budget import metered
    from workflows.casting import Casting
    from workflows.character_runs import CharacterRuns
    from workflows.failures import cancel_started, failure, stop_if_cancelled
    from workflows.inputs import parse_input
    from workflows.options import image_call, storage_call, text_call
    from workflows.world_accounts import WorldAccounts
    from workflows.world_context import WorldContext
    from workflows.world_run import WorldRun

IMAGE_PHASES = ("world_images", "avatars", "post_images")


@workflow.defn
class WorldWorkflow:
    def __init__(self) -> None:
        self._world_run: WorldRun | None = None  # once the job is parsed

    # --- status ----------------------------------------------------------------------------------
    @workflow.query
    def status(self) -> WorldStatus | None:
        """The generation status, with calls, usage and spend as of now (a copy: queries change nothing)."""
        return None if self._world_run is None else self._world_run.snapshot()

    @workflow.signal
    def progress(self, delta: ProgressDelta) -> None:
        """A character's progress (batched by `workflows.world_progress`), into the status and the accounts."""
        if self._world_run is not None:
            self._world_run.report(delta)

    # --- the process -----------------------------------------------------------------------------
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> WorldResult:
        job = parse_input(WorldJob, raw)
        world_id = workflow.info().workflow_id
        world_run = self._world_run = WorldRun(job, world_id)
        status = world_run.status
        if not job.images:
            for name in IMAGE_PHASES:
                world_run.mark_phase(name, PhaseState.COMPLETED)
        world_run.mark_phase("world_description", PhaseState.IN_PROGRESS)
        try:
            if not world_run.accounts.count("text"):
                raise BudgetExhausted("the call budget allows no LLM call")
            made = await metered(
                world_run.accounts.ledger,
                WorldActivities.describe_world,
                WorldPromptRequest(world_id=world_id, prompt=job.prompt),
                text_call("world · description"),
            )
        except (ActivityError, BudgetExhausted):
            world_run.mark_phase("world_description", PhaseState.FAILED)
            status.state = WorldState.FAILED
            console.set_search_attributes(state=status.state.value)
            raise
        world_run.mark_phase("world_description", PhaseState.COMPLETED)
        described = world_run.made(made, "world")
        world = described.world
        status.world_name = world.name
        ctx = WorldContext(job, world_id, format_world(world), world.visual_style, world.name, described.artifact)
        try:
            tasks = [self._characters(world_run, ctx)]
            if job.images:
                tasks.append(self._world_images(world_run, ctx))
            await asyncio.gather(*tasks)
        except BaseException as err:
            if not is_cancelled_exception(err):
                raise
            status.state = WorldState.CANCELLED
            await self._finish(world_run, ctx)
            raise
        for name in ("character_details", "avatars", "posts", "post_images"):
            if status.phases[name] == PhaseState.IN_PROGRESS:
                world_run.mark_phase(name, PhaseState.COMPLETED)
        world_run.refresh_calls()
        if status.budget_exhausted:
            status.failures.append(Failure(step="budget", error="budget exhausted: the world is incomplete"))
        status.state = WorldState.COMPLETED_WITH_ERRORS if status.failures else WorldState.COMPLETED
        return await self._finish(world_run, ctx)

    async def _world_images(self, world_run: WorldRun, ctx: WorldContext) -> None:
        status = world_run.status
        world_run.mark_phase("world_images", PhaseState.IN_PROGRESS)
        status.images.planned += 2

        async def one(kind: str) -> None:
            made = await self._world_image(world_run.accounts, ctx, kind)
            if isinstance(made, Failure):
                status.failures.append(made)
            else:
                world_run.images[kind] = world_run.made(made, kind)
                status.images.created += 1
            world_run.refresh_calls()

        await asyncio.gather(one("background"), one("icon"))
        done = any(world_run.images.values())
        world_run.mark_phase("world_images", PhaseState.COMPLETED if done else PhaseState.FAILED)

    async def _world_image(
        self, accounts: WorldAccounts, ctx: WorldContext, kind: str
    ) -> Metered[ArtifactRef] | Failure:
        if not accounts.count("image"):
            return Failure(step=f"world/{kind}", error="budget exhausted")
        try:
            return await metered(
                accounts.ledger,
                WorldActivities.world_image,
                WorldImageRequest(world_id=ctx.world_id, kind=kind, world_text=ctx.world_text, visual_style=ctx.style),
                image_call(f"world · {kind} image"),
            )
        except BudgetExhausted as err:
            accounts.count("image", -1)  # not made
            return failure(f"world/{kind}", err)
        except ActivityError as err:
            stop_if_cancelled(err)
            return failure(f"world/{kind}", err)

    async def _characters(self, world_run: WorldRun, ctx: WorldContext) -> None:
        """Character batches in sequence (each sees the cast so far); each character starts at once."""
        status = world_run.status
        world_run.mark_phase("characters", PhaseState.IN_PROGRESS)
        casting = Casting(ctx, world_run.accounts)
        runs = CharacterRuns(ctx, world_run.accounts)
        running: list[asyncio.Task[None]] = []
        job = ctx.job
        try:
            for index in range(math.ceil(job.characters / job.character_batch_size)):
                made = await casting.batch(index)
                status.failures += made.failures
                status.duplicates_regenerated += made.regenerated
                if made.last:
                    break
                for seed in made.seeds:
                    world_run.cast.append(seed.username)
                    status.characters.planned += 1
                    status.posts.planned += seed.posts_count
                    status.images.planned += 1 if job.images else 0
                    running.append(asyncio.create_task(self._character(world_run, runs, seed)))
                world_run.refresh_calls()
        except BaseException as err:  # cancelled while casting: the characters already started stop too
            await cancel_started(running, err)
            raise
        world_run.mark_phase("characters", PhaseState.COMPLETED if casting.cast else PhaseState.FAILED)
        await asyncio.gather(*running)
        if status.characters.planned and not status.characters.created:
            world_run.mark_phase("character_details", PhaseState.FAILED)

    async def _character(self, world_run: WorldRun, runs: CharacterRuns, seed: CharacterSeed) -> None:
        """One character through the fan-out, once a slot is free and its share funded; its outcome into the
        world's status."""
        status = world_run.status
        result = None
        async with runs.slots:
            if (share := await runs.fund(seed)) is None:
                status.failures.append(Failure(step=seed.username, error="budget exhausted: not generated"))
            else:
                world_run.characters_started(runs.ctx.job.images)
                result = await runs.run(seed, share)
        world_run.refresh_calls()
        if result is None:
            return
        console.set_search_attributes(cost_usd=status.usage.estimated_cost_usd)
        status.failures += result.failures
        if result.consistency is not None:
            status.consistency[seed.username] = result.consistency
        world_run.results.append(result)

    async def _finish(self, world_run: WorldRun, ctx: WorldContext) -> WorldResult:
        status = world_run.status
        world_run.refresh_calls()
        order = {name: i for i, name in enumerate(world_run.cast)}
        ended = sorted(world_run.results, key=lambda r: order[r.username])
        manifests = [r.manifest for r in ended if r.manifest]
        manifest = gallery = None
        try:
            manifest, gallery = await self._write_manifest(world_run, ctx, manifests)
        except ActivityError as err:  # storage is failing for good: report it, keep the world's state
            status.failures.append(failure("manifest", err))
            if status.state == WorldState.COMPLETED:
                status.state = WorldState.COMPLETED_WITH_ERRORS
        world_run.refresh_calls()
        console.set_search_attributes(state=status.state.value, cost_usd=status.usage.estimated_cost_usd)
        return WorldResult(world_id=ctx.world_id, state=status.state, manifest=manifest, gallery=gallery, status=status)

    async def _write_manifest(
        self, world_run: WorldRun, ctx: WorldContext, manifests: list[ArtifactRef]
    ) -> list[ArtifactRef]:
        status = world_run.status
        return await workflow.execute_activity_method(
            WorldActivities.write_world_manifest,
            WorldManifestRequest(
                world_id=ctx.world_id,
                prompt=ctx.job.prompt,
                state=status.state,
                world=ctx.description,
                world_name=ctx.name,
                background=world_run.images["background"],
                icon=world_run.images["icon"],
                model=world_run.made_by.get("world"),
                image_models={k: v for k, v in world_run.made_by.items() if k in world_run.images},
                characters=manifests,
                failures=status.failures,
                calls=status.calls,
                usage=status.usage,
                consistency=status.consistency,
            ),
            **storage_call(f"world · manifest and gallery of {len(manifests)} characters"),
        )

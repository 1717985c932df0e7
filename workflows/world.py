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
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, is_cancelled_exception
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.world import WorldActivities
    from models.artifacts import ArtifactRef
    from models.scoring import NearDuplicates, NearDuplicatesRequest
    from models.settings import WORKFLOW_QUEUE
    from models.usage import Usage
    from models.world import (
        CallUsage,
        CharacterBatchRequest,
        CharacterJob,
        CharacterResult,
        CharacterSeed,
        CharacterSummary,
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
        persona_text,
        safe_username,
    )
    from workflows import console
    from workflows.character import CharacterWorkflow
    from workflows.failures import failure
    from workflows.inputs import parse_input
    from workflows.options import image_call, metered_call, scoring_call, storage_call, text_call
    from workflows.world_accounts import WorldAccounts

IMAGE_PHASES = ("world_images", "avatars", "post_images")
DUPLICATE_SIMILARITY = 0.9
REGENERATION_ATTEMPTS = 2


@workflow.defn
class WorldWorkflow:
    def __init__(self) -> None:
        self._status: WorldStatus | None = None
        self._accounts = WorldAccounts()  # call and dollar budgets: own calls, running and finished characters
        self._cast: list[str] = []  # usernames in the order the batches made them
        self._seeds: list[CharacterSeed] = []

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
        assert self._status
        calls, usage, spend = self._accounts.totals(self._status.budget_exhausted)
        return {"calls": calls, "usage": usage, "spend": spend}

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

    def _phase(self, name: str, state: PhaseState) -> None:
        assert self._status
        self._status.phases[name] = state

    # --- budget ----------------------------------------------------------------------------------
    def _spend(self, llm: int = 0, image: int = 0) -> bool:
        """Book the world's own next calls, or mark the budget exhausted."""
        assert self._status
        if not self._accounts.spend(llm, image):
            self._status.budget_exhausted = True
            return False
        self._refresh_calls()
        return True

    # --- the process -----------------------------------------------------------------------------
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> WorldResult:
        job = parse_input(WorldJob, raw)
        world_id = workflow.info().workflow_id
        self._accounts = WorldAccounts.for_budget(job.budget)
        st = self._status = WorldStatus(world_id=world_id, budget=job.budget)
        if not job.images:
            for name in IMAGE_PHASES:
                self._phase(name, PhaseState.COMPLETED)
        self._phase("world_description", PhaseState.IN_PROGRESS)
        if not self._spend(llm=1):
            self._phase("world_description", PhaseState.FAILED)
            st.state = WorldState.FAILED
            console.record(state=st.state.value)
            raise ApplicationError("the call budget allows no LLM call", type="BudgetExhausted", non_retryable=True)
        try:
            described = await metered_call(
                self._accounts.ledger,
                WorldActivities.describe_world,
                WorldPromptRequest(world_id=world_id, prompt=job.prompt),
                **text_call("world · description"),
            )
        except ActivityError:
            self._phase("world_description", PhaseState.FAILED)
            st.state = WorldState.FAILED
            console.record(state=st.state.value)
            raise
        self._phase("world_description", PhaseState.COMPLETED)
        world, world_text = described.world, format_world(described.world)
        st.world_name = world.name

        images: dict[str, ArtifactRef | None] = {"background": None, "icon": None}
        results: list[CharacterResult] = []
        try:
            tasks = [self._characters(job, world_id, world_text, world.visual_style, results)]
            if job.images:
                tasks.append(self._world_images(job, world_id, world_text, world.visual_style, images))
            await asyncio.gather(*tasks)
        except BaseException as err:
            if not is_cancelled_exception(err):
                raise
            st.state = WorldState.CANCELLED
            await self._finish(job, world_id, described.artifact, world.name, images, results)
            raise
        for name in ("character_details", "avatars", "posts", "post_images"):
            if st.phases[name] == PhaseState.IN_PROGRESS:
                self._phase(name, PhaseState.COMPLETED)
        if st.budget_exhausted:
            st.failures.append(Failure(step="budget", error="budget exhausted: the world is incomplete"))
        st.state = WorldState.COMPLETED_WITH_ERRORS if st.failures else WorldState.COMPLETED
        return await self._finish(job, world_id, described.artifact, world.name, images, results)

    async def _world_images(
        self, job: WorldJob, world_id: str, world_text: str, style: str, images: dict[str, ArtifactRef | None]
    ) -> None:
        assert self._status
        self._phase("world_images", PhaseState.IN_PROGRESS)
        self._status.images.planned += 2

        async def one(kind: str) -> None:
            assert self._status
            if not self._spend(image=1):
                self._status.failures.append(Failure(step=f"world/{kind}", error="budget exhausted"))
                return
            try:
                images[kind] = await metered_call(
                    self._accounts.ledger,
                    WorldActivities.world_image,
                    WorldImageRequest(world_id=world_id, kind=kind, world_text=world_text, visual_style=style),
                    **image_call(f"world · {kind} image"),
                )
                self._status.images.created += 1
            except ActivityError as err:
                self._status.failures.append(failure(f"world/{kind}", err))

        await asyncio.gather(one("background"), one("icon"))
        done = any(images.values())
        self._phase("world_images", PhaseState.COMPLETED if done else PhaseState.FAILED)

    async def _characters(
        self, job: WorldJob, world_id: str, world_text: str, style: str, results: list[CharacterResult]
    ) -> None:
        """Character batches in sequence (each sees the cast so far); each character starts at once."""
        st = self._status
        assert st
        self._phase("characters", PhaseState.IN_PROGRESS)
        taken: set[str] = set()
        cast: list[CharacterSummary] = []
        running: list[asyncio.Task[None]] = []
        slots = asyncio.Semaphore(job.max_parallel_characters)
        for batch_index in range(math.ceil(job.characters / job.character_batch_size)):
            count = min(job.character_batch_size, job.characters - len(cast))
            if count <= 0 or not self._spend(llm=1):
                break
            try:
                fresh = await self._batch(job, world_id, world_text, batch_index, count, cast, taken)
            except ActivityError as err:
                st.failures.append(failure(f"characters/batch {batch_index + 1}", err))
                continue
            for seed in fresh:
                cast.append(CharacterSummary.model_validate(seed.model_dump()))
                self._cast.append(seed.username)
                self._seeds.append(seed)
                st.characters.planned += 1
                st.posts.planned += seed.posts_count
                st.images.planned += 1 if job.images else 0
                running.append(
                    asyncio.create_task(self._character(job, world_id, world_text, style, seed, slots, results))
                )
        self._phase("characters", PhaseState.COMPLETED if cast else PhaseState.FAILED)
        await asyncio.gather(*running)
        if st.characters.planned and not st.characters.created:
            self._phase("character_details", PhaseState.FAILED)

    async def _batch(
        self,
        job: WorldJob,
        world_id: str,
        world_text: str,
        batch_index: int,
        count: int,
        cast: list[CharacterSummary],
        taken: set[str],
    ) -> list[CharacterSeed]:
        """One batch of new characters; near-copies of anyone already made are asked for again."""
        st = self._status
        assert st
        kept: list[CharacterSeed] = []
        wanted = count
        for attempt in range(REGENERATION_ATTEMPTS + 1):
            batch = await metered_call(
                self._accounts.ledger,
                WorldActivities.character_batch,
                CharacterBatchRequest(
                    world_id=world_id,
                    world_text=world_text,
                    batch_index=batch_index,
                    count=wanted,
                    max_posts=job.posts_per_character,
                    previous=cast + [CharacterSummary.model_validate(s.model_dump()) for s in kept],
                ),
                **text_call(f"world · character batch {batch_index + 1}" + (" · again" if attempt else "")),
            )
            new = batch.characters[:wanted]
            copies = await self._near_copies(job, kept, new) if attempt < REGENERATION_ATTEMPTS else set()
            kept += [seed for i, seed in enumerate(new) if i not in copies]
            wanted = len(copies)
            st.duplicates_regenerated += wanted
            if not wanted or not self._spend(llm=1):
                break
        return [
            seed.model_copy(
                update={
                    "username": safe_username(seed.username, taken),
                    "posts_count": min(seed.posts_count, job.posts_per_character),
                }
            )
            for seed in kept
        ]

    async def _near_copies(self, job: WorldJob, kept: list[CharacterSeed], new: list[CharacterSeed]) -> set[int]:
        """Indexes of `new` characters that are near-copies of an earlier one (scoring queue)."""
        earlier = self._seeds + kept
        if not job.scoring or len(earlier) + len(new) < 2:
            return set()
        texts = [persona_text(s) for s in earlier + new]
        found = await workflow.execute_activity(
            "near_duplicates",
            NearDuplicatesRequest(texts=texts, threshold=DUPLICATE_SIMILARITY),
            result_type=NearDuplicates,
            **scoring_call(f"world · near-duplicate check of {len(new)} new"),
        )
        return {pair.second - len(earlier) for pair in found.pairs if pair.second >= len(earlier)}

    async def _character(
        self,
        job: WorldJob,
        world_id: str,
        world_text: str,
        style: str,
        seed: CharacterSeed,
        slots: asyncio.Semaphore,
        results: list[CharacterResult],
    ) -> None:
        st = self._status
        assert st
        async with slots:
            posts = seed.posts_count
            # worst case: a model that returns one idea per batch needs a batch per post;
            # whatever the character does not spend flows back to the pool when it finishes
            need = CallUsage(
                llm_calls=1 + 2 * posts,
                image_calls=(1 + posts) if job.images else 0,
            )
            allowance, cost = self._accounts.allowance(need)
            if allowance.llm_calls == 0 or (cost is not None and cost.max_usd < cost.text_call_usd):
                st.budget_exhausted = True
                st.failures.append(Failure(step=seed.username, error="budget exhausted: not generated"))
                return
            for name in ("character_details", "posts") + (("avatars", "post_images") if job.images else ()):
                if st.phases[name] == PhaseState.PENDING:
                    self._phase(name, PhaseState.IN_PROGRESS)
            self._accounts.open(seed.username, allowance, cost)
            try:
                result = await workflow.execute_child_workflow(
                    CharacterWorkflow.run,
                    CharacterJob(
                        world_id=world_id,
                        world_text=world_text,
                        visual_style=style,
                        seed=seed,
                        images=job.images,
                        scoring=job.scoring,
                        post_batch_size=job.post_batch_size,
                        allowance=allowance,
                        cost=cost,
                    ),
                    id=f"{world_id}--{seed.username}",
                    task_queue=WORKFLOW_QUEUE,
                    parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                    static_summary=f"@{seed.username} · character of {st.world_name or world_id} · {posts} posts",
                    search_attributes=console.for_child("character"),
                )
            except ChildWorkflowError as err:
                if is_cancelled_exception(err):
                    raise
                result = CharacterResult(username=seed.username, failures=[failure(seed.username, err)])
                result.calls, result.usage = self._accounts.last_report(seed.username) or (allowance, Usage())
            self._accounts.settle(seed.username, result.calls, result.usage)
        self._refresh_calls()
        console.record(cost_usd=st.usage.estimated_cost_usd)
        st.failures += result.failures
        if result.consistency is not None:
            st.consistency[seed.username] = result.consistency
        st.budget_exhausted = st.budget_exhausted or result.budget_exhausted
        results.append(result)

    async def _finish(
        self,
        job: WorldJob,
        world_id: str,
        world_ref: ArtifactRef,
        world_name: str,
        images: dict[str, ArtifactRef | None],
        results: list[CharacterResult],
    ) -> WorldResult:
        st = self._status
        assert st
        self._refresh_calls()
        order = {name: i for i, name in enumerate(self._cast)}
        manifests = [r.manifest for r in sorted(results, key=lambda r: order[r.username]) if r.manifest]
        manifest = gallery = None
        try:
            manifest, gallery = await self._write_manifest(job, world_id, world_ref, world_name, images, manifests)
        except ActivityError as err:  # storage is failing for good: report it, keep the world's state
            st.failures.append(failure("manifest", err))
            if st.state == WorldState.COMPLETED:
                st.state = WorldState.COMPLETED_WITH_ERRORS
        self._refresh_calls()
        console.record(state=st.state.value, cost_usd=st.usage.estimated_cost_usd)
        return WorldResult(world_id=world_id, state=st.state, manifest=manifest, gallery=gallery, status=st)

    async def _write_manifest(
        self,
        job: WorldJob,
        world_id: str,
        world_ref: ArtifactRef,
        world_name: str,
        images: dict[str, ArtifactRef | None],
        manifests: list[ArtifactRef],
    ) -> list[ArtifactRef]:
        st = self._status
        assert st
        return await workflow.execute_activity_method(
            WorldActivities.write_world_manifest,
            WorldManifestRequest(
                world_id=world_id,
                prompt=job.prompt,
                state=st.state,
                world=world_ref,
                world_name=world_name,
                background=images["background"],
                icon=images["icon"],
                characters=manifests,
                failures=st.failures,
                calls=st.calls,
                usage=st.usage,
                consistency=st.consistency,
            ),
            **storage_call(f"world · manifest and gallery of {len(manifests)} characters"),
        )

"""One character of a world: profile → avatar ∥ post batches (a storyline) → per post: text → image.

Runs as a child of WorldWorkflow with its own share of the world's call budget. A step that still
fails after its retries is recorded and the rest goes on; progress is signalled to the world.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.world import WorldActivities
    from models.artifacts import ArtifactRef
    from models.scoring import Similarities, TextPairsRequest
    from models.usage import BudgetExhausted, Metered, V
    from models.world import (
        AvatarRequest,
        CharacterDetail,
        CharacterDetailRequest,
        CharacterJob,
        CharacterManifest,
        CharacterResult,
        Failure,
        PostBatchRequest,
        PostDetailRequest,
        PostIdea,
        PostImageRequest,
        PostRecord,
        PostSummary,
        profile_text,
    )
    from workflows import console
    from workflows.budget import CallAllowance, Ledger, metered
    from workflows.failures import cancel_started, failure, safety_refusal, stop_if_cancelled
    from workflows.inputs import parse_input
    from workflows.options import PaidCall, image_call, scoring_call, storage_call, text_call
    from workflows.scoring import ScoringQueue
    from workflows.world_progress import WorldProgress


@workflow.defn
class CharacterWorkflow:
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> CharacterResult:
        return await CharacterWork(parse_input(CharacterJob, raw)).run()


class CharacterWork:
    """One character's run, built once its job is parsed: its calls within its share (calls of each kind, and
    its part of the world's dollars), its result so far, and its progress told to the world."""

    def __init__(self, job: CharacterJob) -> None:
        self.job = job
        self.calls = CallAllowance.for_run(job.allowance)
        self.progress = WorldProgress(job.seed.username, job.seed.posts_count)
        self.ledger = Ledger.for_run(job.cost, job.models)
        self.result = CharacterResult(username=job.seed.username)
        self.contents: list[str] = []  # the posts' texts, as they are written (the consistency score's)

    async def run(self) -> CharacterResult:
        job, result = self.job, self.result
        seed = job.seed
        profiled = await self._call(
            f"{seed.username}/profile",
            WorldActivities.character_detail,
            CharacterDetailRequest(world_id=job.world_id, world_text=job.world_text, seed=seed),
            text_call(f"@{seed.username} · profile"),
        )
        if profiled is None:
            return self._spent()
        self._report(characters_created=1)
        detail = profiled.value.detail
        posts, avatar = await asyncio.gather(self._posts(detail), self._avatar(detail))
        if job.scoring and self.contents:
            result.consistency = await self._consistency(detail)
        persona = seed.model_dump(include={"username", "display_name", "role_in_world"})
        in_order = sorted(posts, key=lambda post: post.number)
        manifest = CharacterManifest(
            world_id=job.world_id,
            profile=profiled.value.artifact,
            avatar=avatar.value if avatar else None,
            posts=in_order,
            model=profiled.model,
            avatar_model=avatar.model if avatar else None,
            **persona,
        )
        result.manifest = await self._write_manifest(manifest)
        self._spent()
        self._show()
        console.set_search_attributes(
            state="COMPLETED_WITH_ERRORS" if result.failures else "COMPLETED",
            cost_usd=result.usage.estimated_cost_usd,
            score=result.consistency,
        )
        self._report(final=True)
        await self.progress.delivered()
        return result

    async def _call(
        self, step: str, activity: Callable[..., Awaitable[Metered[V]]], request: Any, call: PaidCall
    ) -> Metered[V] | None:
        """One paid call within this character's allowance (calls, and its share of the world's dollars), and
        the model that answered. None when it failed for good or the budget is spent, with the failure recorded
        under `step`."""
        outcome = await self._attempt(step, activity, request, call)
        return None if isinstance(outcome, ActivityError) else outcome

    async def _attempt(
        self, step: str, activity: Callable[..., Awaitable[Metered[V]]], request: Any, call: PaidCall
    ) -> Metered[V] | ActivityError | None:
        """`_call`, with the failure itself when the call failed for good (a picture's refusal is read from it)."""
        if not self.calls.count(call.kind):
            self.result.failures.append(Failure(step=step, error="budget exhausted"))
            return None
        try:
            return await metered(self.ledger, activity, request, call)
        except BudgetExhausted as err:
            self.calls.refused(call.kind)
            self.result.failures.append(failure(step, err))
        except ActivityError as err:
            stop_if_cancelled(err)
            self.result.failures.append(failure(step, err))
            return err
        return None

    def _show(self) -> None:
        result, seed = self.result, self.job.seed
        console.show(
            f"**@{seed.username}** · posts {result.posts_created} of {seed.posts_count} · "
            f"images {result.images_created}",
            f"calls {self.calls.used.llm_calls} text, {self.calls.used.image_calls} image · "
            f"spend ${self.ledger.usage.estimated_cost_usd:.4f}",
            f"{len(result.failures)} failure(s)" if result.failures else "",
        )

    def _report(self, final: bool = False, **counts: int) -> None:
        """Show the character's progress, and tell the world (batched; see `WorldProgress`)."""
        self._show()
        self.progress.report(self.calls.used, self.ledger.usage, final, **counts)

    def _spent(self) -> CharacterResult:
        """What the character used, into its result (the world settles its share with it)."""
        result = self.result
        result.calls, result.usage = self.calls.used, self.ledger.usage
        result.budget_exhausted = self.calls.exhausted
        return result

    async def _write_manifest(self, manifest: CharacterManifest) -> ArtifactRef | None:
        """The character's manifest; None when storage fails for good (the world reports it)."""
        try:
            return await workflow.execute_activity_method(
                WorldActivities.write_character_manifest, manifest, **storage_call(f"@{manifest.username} · manifest")
            )
        except ActivityError as err:
            stop_if_cancelled(err)
            self.result.failures.append(failure(f"{manifest.username}/manifest", err))
            return None

    async def _consistency(self, detail: CharacterDetail) -> float | None:
        """How well the posts fit the persona: mean text similarity, from the scoring queue."""
        persona = profile_text(detail)
        try:
            similar = await ScoringQueue().execute(
                "text_similarity",
                TextPairsRequest(texts=self.contents, references=[persona] * len(self.contents)),
                result_type=Similarities,
                **scoring_call(f"@{detail.username} · consistency of {len(self.contents)} posts"),
            )
        except ActivityError as err:
            stop_if_cancelled(err)
            self.result.failures.append(failure(f"{detail.username}/consistency", err))
            return None
        return round(sum(similar.values) / len(similar.values), 4)

    async def _avatar(self, detail: CharacterDetail) -> Metered[ArtifactRef] | None:
        """The character's avatar; None when the world makes no pictures, or the call failed (recorded)."""
        job = self.job
        if not job.images:
            return None
        avatar = await self._call(
            f"{detail.username}/avatar",
            WorldActivities.character_avatar,
            AvatarRequest(
                world_id=job.world_id,
                username=detail.username,
                avatar_description=detail.avatar_description,
                visual_style=job.visual_style,
            ),
            image_call(f"@{detail.username} · avatar"),
        )
        if avatar is not None:
            self.result.images_created += 1
            self._report(images_created=1)
        return avatar

    async def _posts(self, detail: CharacterDetail) -> list[PostRecord]:
        """Post batches one after another, each seeing the earlier ideas; a batch's posts are written
        (text, then image) in parallel while the next batch is planned. The posts written."""
        job = self.job
        total, arc, previous = job.seed.posts_count, None, []
        writing: list[asyncio.Task[list[PostRecord]]] = []
        batch_index = 0
        try:
            while len(previous) < total:
                count = min(job.post_batch_size, total - len(previous))
                batch = await self._call(
                    f"{detail.username}/post batch {batch_index + 1}",
                    WorldActivities.post_batch,
                    PostBatchRequest(
                        world_id=job.world_id,
                        world_text=job.world_text,
                        character=detail,
                        batch_index=batch_index,
                        count=count,
                        previous=previous,
                        narrative_arc=arc,
                    ),
                    text_call(f"@{detail.username} · post batch {batch_index + 1}"),
                )
                if batch is None:
                    break
                arc = arc or batch.value.narrative_arc
                ideas = batch.value.posts[:count]
                start = len(previous) + 1
                writing.append(asyncio.create_task(self._write_batch(detail, start, ideas, arc)))
                previous += [PostSummary(number=start + i, topic=x.topic, brief=x.brief) for i, x in enumerate(ideas)]
                batch_index += 1
        except BaseException as err:  # cancelled while planning: the posts being written stop too
            await cancel_started(writing, err)
            raise
        written = await asyncio.gather(*writing)
        if len(previous) < total:
            missing = total - len(previous)
            reason = "budget exhausted" if self.calls.exhausted else "storyline stopped"
            self.result.failures.append(
                Failure(step=f"{detail.username}/posts", error=f"{missing} posts not generated: {reason}")
            )
        return [record for records in written for record in records]

    async def _write_batch(
        self, detail: CharacterDetail, start: int, ideas: list[PostIdea], arc: str
    ) -> list[PostRecord]:
        """A batch's posts, written in parallel; those that failed are left out (their failures recorded)."""
        with_images = sum(1 for idea in ideas if idea.has_image) if self.job.images else 0
        if with_images:
            self._report(images_planned=with_images)
        records = await asyncio.gather(*(self._post(detail, start + i, idea, arc) for i, idea in enumerate(ideas)))
        done = [r for r in records if r is not None]
        images = sum(1 for r in done if r.image is not None)
        self.result.posts_created += len(done)
        self.result.images_created += images
        self._report(posts_created=len(done), images_created=images)
        return done

    async def _post(self, detail: CharacterDetail, number: int, idea: PostIdea, arc: str) -> PostRecord | None:
        job, step = self.job, f"{detail.username}/post {number}"
        written = await self._call(
            step,
            WorldActivities.post_detail,
            PostDetailRequest(
                world_id=job.world_id,
                world_text=job.world_text,
                character=detail,
                number=number,
                idea=idea,
                narrative_arc=arc,
            ),
            text_call(f"@{detail.username} · post {number}/{job.seed.posts_count} · text"),
        )
        if written is None:
            return None
        self.contents.append(written.value.detail.content)
        record = PostRecord(number=number, idea=idea, post=written.value.artifact, model=written.model)
        if job.images and idea.has_image:
            picture = await self._attempt(
                f"{step} image",
                WorldActivities.post_image,
                PostImageRequest(
                    world_id=job.world_id,
                    username=detail.username,
                    number=number,
                    image_prompt=written.value.detail.image_prompt,
                    visual_style=job.visual_style,
                ),
                image_call(f"@{detail.username} · post {number}/{job.seed.posts_count} · image"),
            )
            if isinstance(picture, ActivityError):
                said = safety_refusal(picture)
                record.image_refused = said[0] if said else None
            elif picture is not None:
                record.image, record.image_model = picture.value, picture.model
        return record

"""WorldWorkflow and CharacterWorkflow on the time-skipping server with the offline provider."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore, load
from models.settings import WORKFLOW_QUEUE
from models.world import (
    Budget,
    CharacterBatch,
    CharacterBatchRequest,
    PhaseState,
    PostDetail,
    PostDetailRequest,
    WorldJob,
    WorldManifest,
    WorldState,
)
from tests.conftest import eventually, running_workers
from workflows.world import WorldWorkflow

PROMPT = "A floating archipelago run by cartographer guilds"


class SpyProvider(OfflineProvider):
    """The real offline provider, remembering what it was asked (the model service is what we watch)."""

    def __init__(self, latency_s: float = 0.0) -> None:
        super().__init__(latency_s)
        self.contexts: list = []
        self.images = 0

    async def structured(self, schema, instructions, prompt, context=None, max_cost_usd=None, notes=None):
        self.contexts.append(context)
        return await super().structured(schema, instructions, prompt, context, max_cost_usd, notes)

    async def generate_image(self, *args, **kwargs):
        self.images += 1
        return await super().generate_image(*args, **kwargs)


async def run_world(env, provider, store, job: WorldJob):
    async with running_workers(env.client, provider, store):
        handle = await env.client.start_workflow(
            WorldWorkflow.run, job, id=f"world-{uuid.uuid4().hex[:8]}", task_queue=WORKFLOW_QUEUE
        )
        return handle, await handle.result()


async def manifest_of(store, result) -> WorldManifest:
    return WorldManifest.model_validate_json(await load(store, result.manifest))


async def test_world_with_batches_that_see_the_cast_so_far(time_env, tmp_path):
    provider, store = SpyProvider(), LocalStore(tmp_path)
    job = WorldJob(prompt=PROMPT, characters=5, posts_per_character=4, character_batch_size=2, post_batch_size=2)
    _, result = await run_world(time_env, provider, store, job)
    st = result.status
    assert result.state == WorldState.COMPLETED and not st.failures
    assert all(state == PhaseState.COMPLETED for state in st.phases.values())
    assert st.characters.planned == st.characters.created == 5
    assert st.posts.created == st.posts.planned > 0
    assert st.images.created == st.images.planned >= 2 + 5  # world images + avatars + post images
    batches = [c for c in provider.contexts if isinstance(c, CharacterBatchRequest)]
    assert [len(b.previous) for b in batches] == [0, 2, 4]
    assert {c.username for c in batches[2].previous} >= {c.username for c in batches[1].previous}
    assert st.calls.image_calls == provider.images == st.images.created

    manifest = await manifest_of(store, result)
    names = [c.username for c in manifest.characters]
    assert len(names) == len(set(names)) == 5
    for character in manifest.characters:
        assert character.profile and character.avatar
        assert [p.number for p in character.posts] == list(range(1, len(character.posts) + 1))
        assert 1 <= len(character.posts) <= 4
        for post in character.posts:
            assert PostDetail.model_validate_json(await load(store, post.post)).content
            assert (post.image is not None) == post.idea.has_image
    # later posts see the earlier ones of their storyline
    details = [c for c in provider.contexts if isinstance(c, PostDetailRequest)]
    arcs = {(d.character.username, d.narrative_arc) for d in details}
    assert len(arcs) == 5, "one storyline per character"
    html = (tmp_path / "worlds" / result.world_id / "index.html").read_text()
    assert all(f"@{name}" in html for name in names)


class SameNames(OfflineProvider):
    """A model that keeps proposing the same usernames (with unsafe characters)."""

    async def structured(self, schema, instructions, prompt, context=None, max_cost_usd=None, notes=None):
        result = await super().structured(schema, instructions, prompt, context, max_cost_usd, notes)
        if schema is CharacterBatch:
            for character in result.characters:
                character.username = "Ana/../Smith"
        return result


async def test_usernames_are_unique_and_safe(time_env, tmp_path):
    store = LocalStore(tmp_path)
    job = WorldJob(prompt=PROMPT, characters=4, posts_per_character=1, images=False, character_batch_size=2)
    _, result = await run_world(time_env, SameNames(), store, job)
    names = [c.username for c in (await manifest_of(store, result)).characters]
    assert sorted(names) == ["ana_smith", "ana_smith_2", "ana_smith_3", "ana_smith_4"]


class FailsOnePost(OfflineProvider):
    async def structured(self, schema, instructions, prompt, context=None, max_cost_usd=None, notes=None):
        if schema is PostDetail and context.number == 2 and context.character.username == self.victim:
            raise ApplicationError("content policy: refused", type="ProviderHTTP400", non_retryable=True)
        return await super().structured(schema, instructions, prompt, context, max_cost_usd, notes)


async def test_a_post_that_fails_is_recorded_and_the_rest_continues(time_env, tmp_path):
    provider, store = FailsOnePost(), LocalStore(tmp_path)
    job = WorldJob(prompt=PROMPT, characters=2, posts_per_character=3, images=False)
    provider.victim = "placeholder"
    # learn the first character's username from a dry run of the same deterministic world
    _, dry = await run_world(time_env, OfflineProvider(), LocalStore(tmp_path / "dry"), job)
    provider.victim = (await manifest_of(LocalStore(tmp_path / "dry"), dry)).characters[0].username
    _, result = await run_world(time_env, provider, store, job)
    assert result.state == WorldState.COMPLETED_WITH_ERRORS
    assert [f.step for f in result.status.failures] == [f"{provider.victim}/post 2"]
    assert "content policy" in result.status.failures[0].error
    assert result.status.posts.created == result.status.posts.planned - 1
    victim = next(c for c in (await manifest_of(store, result)).characters if c.username == provider.victim)
    assert [p.number for p in victim.posts] == [1, 3]


async def test_budget_exhaustion_finishes_with_what_it_has(time_env, tmp_path):
    provider, store = SpyProvider(), LocalStore(tmp_path)
    job = WorldJob(
        prompt=PROMPT,
        characters=4,
        posts_per_character=4,
        budget=Budget(llm_calls=9, image_calls=3),
        max_parallel_characters=1,
    )
    _, result = await run_world(time_env, provider, store, job)
    st = result.status
    assert st.budget_exhausted and result.state == WorldState.COMPLETED_WITH_ERRORS
    assert any("budget" in f.error for f in st.failures)
    assert len(provider.contexts) <= 9 and provider.images <= 3
    assert st.calls.llm_calls == len(provider.contexts) and st.calls.image_calls == provider.images
    assert 0 < st.posts.created < st.posts.planned


async def test_cancelling_the_world_cancels_its_characters(time_env, tmp_path):
    store = LocalStore(tmp_path)
    job = WorldJob(prompt=PROMPT, characters=3, posts_per_character=6, images=False, post_batch_size=1)
    async with running_workers(time_env.client, OfflineProvider(latency_s=0.3), store):
        handle = await time_env.client.start_workflow(
            WorldWorkflow.run, job, id=f"world-{uuid.uuid4().hex[:8]}", task_queue=WORKFLOW_QUEUE
        )

        async def all_characters_made() -> bool:
            st = await handle.query(WorldWorkflow.status)
            return bool(st and st.characters.created >= 3)

        await eventually(all_characters_made, 60, "three characters")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
        history = await handle.fetch_history()
        child_ids = [
            e.start_child_workflow_execution_initiated_event_attributes.workflow_id
            for e in history.events
            if e.HasField("start_child_workflow_execution_initiated_event_attributes")
        ]
        assert len(child_ids) == 3
        for child_id in child_ids:
            child = time_env.client.get_workflow_handle(child_id)

            async def closed(child=child) -> WorkflowExecutionStatus | None:
                status = (await child.describe()).status
                return status if status != WorkflowExecutionStatus.RUNNING else None

            assert await eventually(closed, 30, f"{child_id} to close") == WorkflowExecutionStatus.CANCELED
    manifest = WorldManifest.model_validate_json((tmp_path / "worlds" / handle.id / "manifest.json").read_text())
    assert manifest.state == WorldState.CANCELLED


@pytest.mark.slow  # waits on real time
async def test_fifty_characters_twenty_posts_stay_under_the_history_limit(time_env, tmp_path):
    store = LocalStore(tmp_path)
    job = WorldJob(prompt=PROMPT, characters=50, posts_per_character=20, images=False, max_parallel_characters=20)
    handle, result = await run_world(time_env, OfflineProvider(), store, job)
    assert result.state == WorldState.COMPLETED
    assert result.status.characters.created == 50
    assert result.status.posts.created == result.status.posts.planned
    history = await handle.fetch_history()
    sizes = {handle.id: len(history.events)}
    for event in history.events:
        if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            child_id = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
            sizes[child_id] = len((await time_env.client.get_workflow_handle(child_id).fetch_history()).events)
    assert len(sizes) == 51
    assert max(sizes.values()) < 10_240, sizes
    print(f"history events: world {sizes[handle.id]}, largest character {max(list(sizes.values())[1:])}")


class CopyCat(OfflineProvider):
    """A model that, once, answers the second batch with a renamed copy of an earlier character."""

    def __init__(self) -> None:
        super().__init__()
        self.first_batch: list = []
        self.copied = False
        self.batch_requests: list[CharacterBatchRequest] = []

    async def structured(self, schema, instructions, prompt, context=None, max_cost_usd=None, notes=None):
        result = await super().structured(schema, instructions, prompt, context, max_cost_usd, notes)
        if schema is CharacterBatch:
            self.batch_requests.append(context)
            if not self.first_batch:
                self.first_batch = [c.model_copy() for c in result.characters]
            elif not self.copied:
                self.copied = True
                original = self.first_batch[0]
                result.characters[0] = original.model_copy(update={"username": "impostor", "display_name": "Im Postor"})
        return result


async def test_near_duplicate_characters_are_regenerated_and_consistency_recorded(time_env, tmp_path):
    provider, store = CopyCat(), LocalStore(tmp_path)
    job = WorldJob(prompt=PROMPT, characters=4, posts_per_character=2, images=False, character_batch_size=2)
    _, result = await run_world(time_env, provider, store, job)
    st = result.status
    assert provider.copied and st.duplicates_regenerated == 1
    assert [r.count for r in provider.batch_requests] == [2, 2, 1], "the copy was asked for again, alone"
    names = [c.username for c in (await manifest_of(store, result)).characters]
    assert "impostor" not in names and len(names) == 4
    assert set(st.consistency) == set(names)
    assert all(0 < value <= 1 for value in st.consistency.values())

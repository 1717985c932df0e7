"""A character's call allowance is kept per kind (#27 item 7): once its image calls are spent it still writes
its text posts, within its text calls, and its result still says the budget ran out."""

from __future__ import annotations

import uuid

from temporalio.exceptions import ApplicationError

from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore, load
from models.settings import WORKFLOW_QUEUE
from models.world import (
    Budget,
    CallUsage,
    CharacterJob,
    CharacterManifest,
    CharacterResult,
    CharacterSeed,
    PostDetail,
    WorldJob,
    WorldManifest,
)
from tests.conftest import running_workers
from workflows.character import CharacterWorkflow
from workflows.world import WorldWorkflow


class Counting(OfflineProvider):
    """The offline provider, counting the model calls of each kind it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.images = 0

    async def structured(self, schema, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.texts.append(schema.__name__)
        return await super().structured(schema, *args, **kwargs)

    async def generate_image(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.images += 1
        return await super().generate_image(*args, **kwargs)


SEED = CharacterSeed(
    username="mira_lantern",
    display_name="Mira",
    role_in_world="lamplighter",
    personality_traits=["curious"],
    interests=["tides", "old maps"],
    posts_count=8,
)


async def run_character(env, provider: Counting, store: LocalStore, allowance: CallUsage) -> CharacterResult:
    """SEED's character, in posts batches of 2, within `allowance` (pictures only when it has image calls)."""
    job = CharacterJob(
        world_id="world-kinds",
        world_text="A harbour town lit by tide-powered lamps.",
        visual_style="ink and watercolour",
        seed=SEED,
        images=allowance.image_calls > 0,
        scoring=False,
        post_batch_size=2,
        allowance=allowance,
    )
    async with running_workers(env.client, provider, store):
        return await env.client.execute_workflow(
            CharacterWorkflow.run, job, id=f"character-{uuid.uuid4().hex[:8]}", task_queue=WORKFLOW_QUEUE
        )


async def test_a_character_out_of_image_calls_still_writes_its_text_posts(time_env, tmp_path):
    provider, store = Counting(), LocalStore(tmp_path)
    # text calls: profile + 4 post batches + 8 posts = 13; one image call: the avatar takes it
    result = await run_character(time_env, provider, store, CallUsage(llm_calls=13, image_calls=1))
    manifest = CharacterManifest.model_validate_json(await load(store, result.manifest))
    planned_images = sum(1 for p in manifest.posts if p.idea.has_image)
    assert planned_images > 0, "the storyline plans post images (else this test measures nothing)"

    assert result.budget_exhausted, "the image allowance ran out: the result says so"
    assert result.posts_created == SEED.posts_count, f"every text post is written: {result.failures}"
    assert [p.number for p in manifest.posts] == list(range(1, SEED.posts_count + 1))
    for post in manifest.posts:
        assert PostDetail.model_validate_json(await load(store, post.post)).content
        assert post.image is None, "no image call beyond the allowance"
    assert manifest.avatar is not None and provider.images == result.images_created == 1
    assert len(provider.texts) == result.calls.llm_calls == 13
    assert result.calls == CallUsage(llm_calls=13, image_calls=1)
    refused = [f for f in result.failures if f.error == "budget exhausted"]
    assert refused and all(f.step.endswith(" image") for f in refused), result.failures
    assert len(refused) == planned_images == len(result.failures)


async def test_a_character_out_of_text_calls_stops_its_text_posts_there(time_env, tmp_path):
    """The text allowance still binds: with 5 text calls (profile, 2 batches, 2 posts) the rest is refused."""
    provider, store = Counting(), LocalStore(tmp_path)
    result = await run_character(time_env, provider, store, CallUsage(llm_calls=5, image_calls=0))
    assert result.budget_exhausted
    assert len(provider.texts) == result.calls.llm_calls == 5
    assert 0 < result.posts_created < SEED.posts_count


async def test_a_world_out_of_image_calls_still_writes_every_text_post(time_env, tmp_path):
    provider, store = Counting(), LocalStore(tmp_path)
    # 4 image calls: 2 world images, and 2 for the characters (avatars, post images) when more are planned
    job = WorldJob(
        prompt="A floating archipelago run by cartographer guilds",
        characters=2,
        posts_per_character=6,
        post_batch_size=2,
        scoring=False,
        budget=Budget(llm_calls=1000, image_calls=4),
        max_parallel_characters=1,
    )
    async with running_workers(time_env.client, provider, store):
        result = await time_env.client.execute_workflow(
            WorldWorkflow.run, job, id=f"world-{uuid.uuid4().hex[:8]}", task_queue=WORKFLOW_QUEUE
        )
    st = result.status
    assert st.budget_exhausted
    assert st.posts.created == st.posts.planned > 2, st.failures
    assert provider.images == st.calls.image_calls == 4
    manifest = WorldManifest.model_validate_json(await load(store, result.manifest))
    assert len(manifest.characters) == 2
    assert sum(len(c.posts) for c in manifest.characters) == st.posts.planned
    planned_images = sum(1 for c in manifest.characters for p in c.posts if p.idea.has_image)
    made_images = sum(1 for c in manifest.characters for p in c.posts if p.image is not None)
    refused = [f for f in st.failures if f.step != "budget"]
    assert refused and len(refused) >= planned_images - made_images, st.failures
    assert all(f.error == "budget exhausted" and f.step.endswith((" image", "/avatar")) for f in refused), [
        f.step for f in refused
    ]


class ProfileFails(Counting):
    """Counting, with the character's profile call failing for good (a permanent provider error)."""

    async def structured(self, schema, *args, **kwargs):  # type: ignore[no-untyped-def]
        if schema.__name__ == "CharacterDetail":
            self.texts.append(schema.__name__)
            raise ApplicationError("the model refused the schema", type="BadRequest", non_retryable=True)
        return await super().structured(schema, *args, **kwargs)


async def test_a_character_whose_profile_fails_still_reports_the_call_it_made(time_env, tmp_path):
    """The world settles a character's share with its result: a failed profile call was made and counts."""
    provider = ProfileFails()
    result = await run_character(time_env, provider, LocalStore(tmp_path), CallUsage(llm_calls=13, image_calls=1))
    assert provider.texts == ["CharacterDetail"] and result.manifest is None
    assert [f.step for f in result.failures] == [f"{SEED.username}/profile"], result.failures
    assert result.calls == CallUsage(llm_calls=1), "the call was made: the world's count keeps it"

"""A picture is paid for once (#27 item 5): when storing it fails after the provider answered, the retry
stores the picture already bought instead of buying it again, and its usage is booked once."""

from __future__ import annotations

import uuid

from activities.storage import LocalStore
from models.image import ImageJob, ImageOptions
from models.meme import MemeJob
from models.settings import WORKFLOW_QUEUE
from models.world import WorldJob
from tests.conftest import running_workers
from tests.test_image_workflow import openai_provider
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.meme import MemeWorkflow
from workflows.world import WorldWorkflow

PICTURE_ROUTES = ("/responses", "/images/generations")


class StoreDownForPictures(LocalStore):
    """The store refuses each picture key's first two puts (the provider has answered by then)."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.refused: dict[str, int] = {}

    async def put(self, key, data, content_type):
        if content_type.startswith("image/") and self.refused.get(key, 0) < 2:
            self.refused[key] = self.refused.get(key, 0) + 1
            raise ConnectionError(f"store unreachable writing {key}")
        return await super().put(key, data, content_type)


def picture_requests(fake) -> int:
    return sum(1 for r in fake.requests if r.path.endswith(PICTURE_ROUTES) and not r.faulted)


async def test_the_image_loop_stores_the_picture_it_bought(time_env, fake_openai, tmp_path):
    store = StoreDownForPictures(tmp_path)
    job = ImageJob(
        prompt="a red fox in snow", options=ImageOptions(background="opaque"), max_iterations=1, technical_weight=0
    )
    async with running_workers(time_env.client, openai_provider(fake_openai), store):
        result = await time_env.client.execute_workflow(
            ImageRefinementWorkflow.run, job, id=f"paid-once-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
    [iteration] = result.iterations
    assert store.refused == {iteration.image.key: 2}, "the store failed twice after the picture arrived"
    assert picture_requests(fake_openai) == 1, "one picture bought, not three"
    assert await store.read(iteration.image.key) and result.usage.images == 1, "stored, and booked once"


async def test_world_and_meme_pictures_are_bought_once(time_env, fake_openai, tmp_path):
    store = StoreDownForPictures(tmp_path)
    world = WorldJob(prompt="A reef town of divers", characters=1, posts_per_character=1, scoring=False)
    meme = MemeJob(topic="mondays", max_refinements=0, use_cache=False)
    async with running_workers(time_env.client, openai_provider(fake_openai), store):
        made = await time_env.client.execute_workflow(
            WorldWorkflow.run, world, id=f"paid-once-world-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
        world_pictures = picture_requests(fake_openai)
        memed = await time_env.client.execute_workflow(
            MemeWorkflow.run, meme, id=f"paid-once-meme-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
    assert not made.status.failures, made.status.failures
    refused_world = [key for key in store.refused if key.startswith("worlds/")]
    assert refused_world and all(store.refused[key] == 2 for key in refused_world)
    assert world_pictures == len(refused_world) == made.status.images.created, "each picture bought once"
    scenes = [key for key in store.refused if "scene-" in key]
    assert scenes and picture_requests(fake_openai) - world_pictures == len(scenes), "each scene bought once"
    assert memed.degraded is None, memed.degraded

"""A picture is paid for once (#27 item 5): when storing it fails after the provider answered, the retry
stores the picture already bought instead of buying it again, and its usage is booked once."""

from __future__ import annotations

import dataclasses
import os
import time
import uuid

import pytest
from temporalio.testing import ActivityEnvironment

from activities.providers.base import GeneratedBytes
from activities.purchases import Spool, bought_once
from kit.storage import LocalStore, load
from models.image import ImageJob, ImageOptions
from models.meme import MemeJob
from models.settings import WORKFLOW_QUEUE
from models.usage import Metered, ModelUsage, Usage, usage_detail
from models.world import WorldJob
from tests.conftest import running_workers
from tests.test_image_workflow import openai_provider
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.meme import MemeWorkflow
from workflows.world import WorldWorkflow

PICTURE_ROUTES = ("/responses", "/images/generations")


def bought(key: str, content_type: str) -> bool:
    """A picture the provider sold: the image loop's iterations, a world's pictures, a meme's scenes."""
    name = key.rsplit("/", 1)[-1]
    ours = key.startswith("worlds/") or name.startswith(("iteration-", "scene-"))
    return ours and content_type.startswith("image/")


class StoreDownForPictures(LocalStore):
    """The store refuses each bought picture's first two puts (the provider has answered by then)."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.refused: dict[str, int] = {}

    async def put(self, key, data, content_type):
        if bought(key, content_type) and self.refused.get(key, 0) < 2:
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
    assert await load(store, iteration.image), "stored: the bytes match the reference's sha256"
    assert result.usage.images == 1, "booked once"


async def test_world_and_meme_pictures_are_bought_once(time_env, fake_openai, tmp_path):
    store = StoreDownForPictures(tmp_path)
    world = WorldJob(prompt="A reef town of divers", characters=1, posts_per_character=1, scoring=False)
    meme = MemeJob(
        topic="mondays", format="drake", max_refinements=0, use_cache=False
    )  # two panels, as the fake writes
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
    assert made.status.usage.images == world_pictures and memed.usage.images == len(scenes), "each booked once"
    for key in store.refused:
        assert await store.exists(key), f"{key} stored"


PICTURE = GeneratedBytes(b"\x89PNG picture", "image/png", "resp-1")
BOUGHT = Usage(models={"gpt-image-1": ModelUsage(calls=1, output_tokens=100, images=1, cost_usd=0.004)})
EARLIER = Usage(models={"gpt-image-1": ModelUsage(calls=1, input_tokens=10, cost_usd=0.0001)})  # a failed call


class Attempts:
    """One image activity's attempts, each in an activity environment whose heartbeat details say what the
    earlier attempts' heartbeats carried; the store refuses the first `refusals` puts."""

    def __init__(self, tmp_path, refusals: int) -> None:
        self.spool = Spool(tmp_path / "spool")
        self.spool.folder.mkdir()
        self.store = LocalStore(tmp_path / "store")
        self.refusals, self.bought = refusals, 0
        put = self.store.put

        async def flaky_put(key, data, content_type):
            if self.refusals:
                self.refusals -= 1
                raise ConnectionError("store unreachable")
            return await put(key, data, content_type)

        self.store.put = flaky_put  # type: ignore[method-assign]

    async def buy(self) -> Metered[GeneratedBytes]:
        self.bought += 1
        return Metered(value=PICTURE, usage=BOUGHT)

    async def attempt(self, number: int, carried: Usage | None):
        env = ActivityEnvironment()
        env.info = dataclasses.replace(
            env.info, attempt=number, heartbeat_details=[usage_detail(carried)] if carried else []
        )
        return await env.run(bought_once, self.spool, self.store, "runs/r/iteration-01.png", self.buy)


@pytest.mark.parametrize(
    ("first", "carried", "booked"),
    [
        (None, BOUGHT, Usage()),  # the buying attempt's heartbeat carried its usage: the interceptor adds it
        (None, None, BOUGHT),  # the worker died before it got through: booked from the spool
        (EARLIER, EARLIER, BOUGHT),  # only an earlier attempt's failed call got through: still booked
        (EARLIER, EARLIER.plus(BOUGHT), Usage()),
    ],
)
async def test_a_retry_stores_the_spooled_picture_and_books_it_once(tmp_path, first, carried, booked):
    attempts = Attempts(tmp_path, refusals=1)
    with pytest.raises(ConnectionError):
        await attempts.attempt(2 if first else 1, first)
    assert attempts.bought == 1 and len(os.listdir(attempts.spool.folder)) == 2, "bought, and spooled"
    called, stored = await attempts.attempt(3 if first else 2, carried)
    assert attempts.bought == 1, "not bought again"
    assert called.value == PICTURE and called.usage == booked
    assert await load(attempts.store, stored) == PICTURE.data
    assert not os.listdir(attempts.spool.folder), "the spool is emptied once stored"


async def test_a_worker_sweeps_what_no_attempt_came_back_for(tmp_path):
    attempts = Attempts(tmp_path, refusals=1)
    with pytest.raises(ConnectionError):
        await attempts.attempt(1, None)
    assert attempts.spool.sweep() == 0, "a fresh purchase is kept for its retries"
    week_ago = time.time() - 8 * 24 * 3600
    for name in os.listdir(attempts.spool.folder):
        os.utime(attempts.spool.folder / name, (week_ago, week_ago))
    assert attempts.spool.sweep() == 2 and not os.listdir(attempts.spool.folder)

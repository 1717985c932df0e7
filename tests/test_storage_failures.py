"""Storage that fails for good, or is slow: runs end with what they made and say what failed, instead of
retrying forever; slow storage never trips a heartbeat timeout."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore
from models.conversation import ConversationConfig, ConversationStart
from models.image import ImageJob
from models.meme import MemeJob
from models.settings import WORKFLOW_QUEUE
from models.world import WorldJob, WorldState
from tests.conftest import TEST_SERVER, running_workers
from workflows.conversation import ConversationWorkflow
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.meme import MemeWorkflow
from workflows.options import HEARTBEAT_TIMEOUT
from workflows.world import WorldWorkflow


class FailingStore(LocalStore):
    """A store that refuses some keys for good (a bucket policy, a full disk)."""

    def __init__(self, root, *refuse: str) -> None:
        super().__init__(root)
        self.refuse = refuse
        self.refused = 0

    async def put(self, key, data, content_type):
        if any(part in key for part in self.refuse):
            self.refused += 1
            raise PermissionError(f"access denied writing {key}")
        return await super().put(key, data, content_type)


class SlowStore(LocalStore):
    """Images take longer to store than the heartbeat timeout."""

    async def put(self, key, data, content_type):
        if content_type.startswith("image/"):
            await asyncio.sleep(HEARTBEAT_TIMEOUT.total_seconds() + 2)
        return await super().put(key, data, content_type)


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of each test's own: the bounded retries take minutes of server time,
    skipped only while nothing else holds the clock, and a test that fails cannot leave the next one
    a server in a bad state."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
    )
    yield env
    await env.shutdown()


def offline() -> GuardedProvider:
    return GuardedProvider(OfflineProvider(), None)


async def test_world_whose_manifest_cannot_be_written_ends_with_errors_naming_it(time_env, tmp_path):
    store = FailingStore(tmp_path, "manifest.json", "character.json")
    job = WorldJob(prompt="A town of bell founders", characters=2, posts_per_character=1, images=False, scoring=False)
    async with running_workers(time_env.client, offline(), store):
        result = await time_env.client.execute_workflow(
            WorldWorkflow.run, job, id=f"no-manifest-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
    steps = {f.step: f.error for f in result.status.failures}
    assert result.state == WorldState.COMPLETED_WITH_ERRORS and result.manifest is None
    assert "access denied" in steps["manifest"] and sum("/manifest" in s for s in steps) == 2
    assert result.status.posts.created == result.status.posts.planned == 2, "the posts were made and kept"
    assert store.refused == 3 * 10, "each manifest was tried a bounded number of times"


async def test_conversation_replies_and_says_archiving_failed(dev_env, tmp_path):
    # The dev server, not the time-skipping one: waiting on an update does not skip time there, and
    # its updates are known to hang under load (temporalio/sdk-java#1903). The bounds are seconds.
    store = FailingStore(tmp_path, "/turns/")
    async with running_workers(dev_env.client, offline(), store):
        handle = await dev_env.client.start_workflow(
            ConversationWorkflow.run,
            ConversationStart(config=ConversationConfig(retrieval_wait_s=2, archive_wait_s=3)),
            id=f"conv-{uuid.uuid4()}",
            task_queue=WORKFLOW_QUEUE,
        )
        reply = await handle.execute_update(ConversationWorkflow.ask, "I keep bees in Lisbon.")
        again = await handle.execute_update(ConversationWorkflow.ask, "What do I keep?")
    assert "archiving failed" in reply.text and any("archiving failed" in d for d in reply.degraded)
    assert again.turn == 2, "the conversation goes on"


async def test_meme_reports_a_failed_upload_and_keeps_the_meme(time_env, tmp_path):
    store = FailingStore(tmp_path, "memes/")
    async with running_workers(time_env.client, offline(), store):
        result = await time_env.client.execute_workflow(
            MemeWorkflow.run,
            MemeJob(topic="mondays", format="drake", use_cache=False),
            id=f"meme-{uuid.uuid4()}",
            task_queue=WORKFLOW_QUEUE,
        )
    assert result.url is None and result.upload_error, "the failed upload is reported"
    assert (tmp_path / result.image.key).is_file(), "the rendered meme is kept"


@pytest.mark.slow  # waits on real time
async def test_slow_storage_does_not_trip_the_heartbeat_timeout(dev_env, tmp_path):
    job = ImageJob(prompt="a slow red fox", max_iterations=1, threshold=0, technical_weight=0)
    async with running_workers(dev_env.client, offline(), SlowStore(tmp_path)):
        handle = await dev_env.client.start_workflow(
            ImageRefinementWorkflow.run, job, id=f"slow-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
        result = await handle.result()
    assert result.final_score >= 0
    history = await handle.fetch_history()
    started = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert started and set(started) == {1}, "no attempt timed out"

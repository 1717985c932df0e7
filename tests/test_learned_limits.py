"""Limits learned from the provider: with no ATELIER_*_RPM set, what the provider says on every response
becomes the paid queue's limit on the Temporal server (shared by every worker process), and a provider that
says nothing is backed off from on 429s; a configured RPM still wins."""

from __future__ import annotations

import uuid

import pytest
from temporalio.api.enums.v1 import RateLimitSource

from activities.learned_limits import HEADROOM, LimitLearner
from activities.providers import make_provider
from kit.storage import LocalStore
from models.settings import IMAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE, Settings
from models.world import WorldJob, WorldState
from starter.waiting import describe_queue, waiting
from tests.conftest import running_workers
from workflows.world import WorldWorkflow


def test_the_limit_a_provider_tells_is_taken_a_little_under():
    learner = LimitLearner({"text": 0, "image": 30})
    learner.observe("text", {"x-ratelimit-limit-requests": "90", "x-ratelimit-remaining-requests": "89"}, False)
    assert learner.limit["text"] == pytest.approx(90 * HEADROOM)
    learner.observe("image", {"x-ratelimit-limit-requests": "5"}, False)
    assert "image" not in learner.limit, "a configured RPM wins"


def test_without_headers_a_429_backs_off_to_what_was_getting_through(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("activities.learned_limits.time.monotonic", lambda: now[0])
    learner = LimitLearner({"text": 0, "image": 0})
    for _ in range(20):  # 20 answered in the last minute
        now[0] += 1
        learner.observe("image", None, refused=False)
    learner.observe("image", None, refused=True)
    assert learner.pace("image") == pytest.approx(0.8 * 20 * 60 / 19), "80% of the rate getting through"
    assert "image" not in learner.limit, "an inferred pace stays in the process: the server is not told"
    before = learner.pace("image")
    now[0] += 61
    learner.observe("image", None, refused=False)
    assert learner.pace("image") == pytest.approx(1.1 * before), "a minute without refusals: a little more"


async def queue_limit(client, queue: str) -> tuple[float, int]:
    limit = (await describe_queue(client, queue)).effective_rate_limit
    return limit.requests_per_second, limit.rate_limit_source


async def test_an_unconfigured_world_learns_the_limits_and_sets_them_on_the_server(dev_env, fake_openai, tmp_path):
    fake_openai.rate_limit(text_per_minute=300, images_per_minute=60, burst_s=2, hosted=True)
    settings = Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-learn", ATELIER_CALL_LOG=False)
    assert settings.rpm("text") == 0 and settings.rpm("image") == 0
    job = WorldJob(prompt="A salt-flat racing town", characters=3, posts_per_character=2, scoring=False)
    async with running_workers(dev_env.client, make_provider(settings), LocalStore(tmp_path)):
        result = await dev_env.client.execute_workflow(
            WorldWorkflow.run, job, id=f"learn-{uuid.uuid4().hex[:6]}", task_queue=WORKFLOW_QUEUE
        )
        lines = await waiting(dev_env.client)
    status = result.status
    assert result.state == WorldState.COMPLETED and status.images.created == status.images.planned
    for queue, per_minute in ((TEXT_QUEUE, 300), (IMAGE_QUEUE, 60)):
        rps, source = await queue_limit(dev_env.client, queue)
        assert source == RateLimitSource.RATE_LIMIT_SOURCE_API, queue
        assert rps == pytest.approx(per_minute * HEADROOM / 60, rel=0.01), "the server paces every process"
    refused = len(fake_openai.limited()) / len(fake_openai.requests)
    kinds = {r.path.rsplit("/", 1)[-1] for r in fake_openai.limited()}
    assert refused <= 0.1, f"{refused:.0%} of requests refused ({kinds}): no storm"
    assert all("rate limit" in line or "queued" in line for line in lines)

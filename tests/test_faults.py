"""Provider faults: 30% of model calls fail (429 + Retry-After, 500, stalls, malformed JSON); every
run completes without retry storms, and permanent errors fail fast with the provider's message."""

from __future__ import annotations

import json
import uuid

import pytest

from activities.providers.openai_provider import OpenAIProvider
from kit.storage import LocalStore
from models.image import ImageJob, ImageOptions, StopReason
from models.settings import WORKFLOW_QUEUE, Settings
from models.world import WorldJob, WorldState
from tests.conftest import address_of, atelier_env, run_cli, running_workers, start_worker
from tests.fake_openai import Fault, error_body
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.world import WorldWorkflow

FAULT_RATE = 0.3
MAX_CALL_RATIO = 1.6


async def test_every_run_completes_under_thirty_percent_faults(time_env, fake_openai, tmp_path):
    fake_openai.random_faults(FAULT_RATE, seed=11, timeout_s=1.5)
    provider = OpenAIProvider(Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="test-key", LLM_TIMEOUT_S=0.5))
    image_job = ImageJob(prompt="a red fox", options=ImageOptions(background="opaque"), max_iterations=3, threshold=100)
    world_job = WorldJob(prompt="A river town of glassblowers", characters=2, posts_per_character=3)
    async with running_workers(time_env.client, provider, LocalStore(tmp_path)):
        for _ in range(3):
            result = await time_env.client.execute_workflow(
                ImageRefinementWorkflow.run, image_job, id=f"fault-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
            )
            assert result.stopped_because == StopReason.MAX_ITERATIONS and len(result.iterations) == 3
        world = await time_env.client.execute_workflow(
            WorldWorkflow.run, world_job, id=f"fault-world-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
        assert world.state == WorldState.COMPLETED, world.status.failures
        assert world.status.posts.created == world.status.posts.planned
    total = len(fake_openai.requests)
    faulted = sum(1 for r in fake_openai.requests if r.faulted)
    ideal = total - faulted
    ratio = total / ideal
    print(f"provider calls {total} for {ideal} needed ({faulted} faulted) -> {ratio:.2f}x")
    assert faulted >= 0.15 * total, "the fault injector did inject"
    assert ratio <= MAX_CALL_RATIO, f"{ratio:.2f}x the ideal number of provider calls"


@pytest.mark.slow
async def test_permanent_errors_fail_fast_with_the_providers_message(dev_env, fake_openai, tmp_path):
    denied = Fault(status=401, body=error_body("Incorrect API key provided: sk-te***", "invalid_api_key"))
    fake_openai.fail("responses", *(denied for _ in range(5)))
    env = atelier_env(tmp_path, address_of(dev_env), LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-test")
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        done = run_cli("image", "a cat", "--id", "denied", env=env, timeout=60)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert done.returncode == 1 and done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: run failed:") and "HTTP 401" in last and "Incorrect API key" in last
    assert "Traceback" not in done.stderr
    assert len(fake_openai.calls("responses")) == 1, "no retries for a permanent error"
    history = json.dumps([e.workflow_execution_failed_event_attributes.failure.cause.message
                          for e in (await dev_env.client.get_workflow_handle("denied").fetch_history()).events
                          if e.HasField("workflow_execution_failed_event_attributes")])  # fmt: skip
    assert "Incorrect API key" in history

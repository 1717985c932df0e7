"""Kill -9 the worker mid-run: a new worker finishes the run and finished steps are not redone."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import timedelta

import pytest

from models.image import ImageJob, ImageOptions, Phase, StopReason
from models.settings import IMAGE_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE
from tests.conftest import address_of, atelier_env, eventually, run_cli, start_worker, wait_for, wait_for_pollers
from tests.fake_openai import Fault
from workflows.image_refinement import ImageRefinementWorkflow

pytestmark = pytest.mark.slow

SECRET = "sk-crash-test-secret-4242"


async def test_worker_killed_during_generation_resumes_without_repeating_work(dev_env, fake_openai, tmp_path):
    fake_openai.script_scores(10, 20, 30)
    fake_openai.delays["responses"] = 1.5  # every image takes a while, so the kill lands mid-call
    env = atelier_env(tmp_path, address_of(dev_env), LLM_BASE_URL=fake_openai.url, LLM_API_KEY=SECRET)
    job = ImageJob(
        prompt="a castle on a hill",
        options=ImageOptions(background="opaque"),
        max_iterations=3,
        threshold=100,
        technical_weight=0,  # the fake evaluator scripts exact scores
    )

    first = start_worker(env, tmp_path / "worker-1.log")
    await wait_for_pollers(dev_env.client, WORKFLOW_QUEUE)  # a query needs a worker that polls: wait on that
    handle = await dev_env.client.start_workflow(
        ImageRefinementWorkflow.run, job, id="crash-1", task_queue=WORKFLOW_QUEUE
    )

    async def generating_the_second() -> bool:
        state = await handle.query(ImageRefinementWorkflow.state, rpc_timeout=timedelta(seconds=10))
        return bool(
            state
            and state.iteration == 2
            and state.phase == Phase.GENERATING
            and len(fake_openai.calls("responses")) == 2
        )

    await eventually(generating_the_second, 60, "the run to generate iteration 2")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    calls_at_kill = len(fake_openai.calls("chat"))

    second = start_worker(env, tmp_path / "worker-2.log")
    try:
        result = await asyncio.wait_for(handle.result(), timeout=120)
    finally:
        second.terminate()
        second.wait(timeout=30)

    assert result.stopped_because == StopReason.MAX_ITERATIONS
    assert [it.score for it in result.iterations] == [10, 20, 30]
    generated = fake_openai.generation_prompts()
    evaluated = fake_openai.evaluated_prompts()
    first_prompt, second_prompt, third_prompt = (it.prompt for it in result.iterations)
    # iteration 1 finished before the crash: not generated, evaluated or refined again
    assert generated.count(first_prompt) == 1
    assert evaluated.count(first_prompt) == 1
    assert calls_at_kill == 2  # evaluation 1 + refinement 1, both before the kill
    # the interrupted generation is retried; everything after it runs exactly once
    assert generated.count(second_prompt) == 2
    assert evaluated == [first_prompt, second_prompt, third_prompt]
    assert generated.count(third_prompt) == 1
    # the key reached the provider, and nothing else: not the history, not the worker logs
    history = (await handle.fetch_history()).to_json()
    logs = (tmp_path / "worker-1.log").read_text() + (tmp_path / "worker-2.log").read_text()
    assert SECRET not in history and SECRET not in logs


async def test_cli_cancel_of_a_running_run_prints_best_so_far(dev_env, fake_openai, tmp_path):
    fake_openai.script_scores(42)
    fake_openai.fail("responses", Fault(), Fault(delay=20.0))
    env = atelier_env(tmp_path, address_of(dev_env), LLM_BASE_URL=fake_openai.url, LLM_API_KEY=SECRET)
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        started = run_cli("image", "a tiny boat", "--id", "cancel-me", "--detach", "--technical-weight", "0", env=env)
        assert started.returncode == 0, started.stderr
        wait_for(lambda: len(fake_openai.calls("responses")) == 2, 60, "the second generation")
        cancelled = run_cli("cancel", "cancel-me", env=env)
        assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["cancel_requested"] is True
        result = run_cli("result", "cancel-me", "--out", str(tmp_path / "out"), env=env)
        assert result.returncode == 0, result.stderr
        payload = json.loads(result.stdout)
        assert payload["stopped_because"] == "cancelled"
        assert payload["score_history"] == [42] and payload["final_score"] == 42
        assert payload["provider"] == fake_openai.url.split("/")[2], "named after the endpoint it used"
    finally:
        worker.terminate()
        worker.wait(timeout=30)


async def test_a_deploy_lets_the_picture_in_flight_finish_instead_of_paying_for_it_again(
    dev_env, fake_openai, tmp_path
):
    """SIGTERM (a rolling deploy) while the provider makes a picture that takes longer than the old 10 s
    grace: the stopping worker finishes and reports that call, the new one goes on; one picture paid."""
    fake_openai.script_scores(80)
    fake_openai.delays["responses"] = 14
    env = atelier_env(tmp_path, address_of(dev_env), LLM_BASE_URL=fake_openai.url, LLM_API_KEY=SECRET)
    env["LLM_TIMEOUT_S"] = "30"
    queues = (WORKFLOW_QUEUE, TEXT_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE)
    job = ImageJob(prompt="a slow sunrise", max_iterations=1, threshold=0, technical_weight=0)
    old = start_worker(env, tmp_path / "old.log", queues)
    new = None
    try:
        handle = await dev_env.client.start_workflow(
            ImageRefinementWorkflow.run, job, id="deploy-1", task_queue=WORKFLOW_QUEUE
        )
        wait_for(lambda: len(fake_openai.calls("responses")) == 1, 60, "the picture to be asked for")
        old.send_signal(signal.SIGTERM)
        new = start_worker(env, tmp_path / "new.log", queues)
        result = await asyncio.wait_for(handle.result(), timeout=90)
        assert old.wait(timeout=60) == 0, "the old worker drained and exited cleanly"
    finally:
        for worker in (old, new):
            if worker and worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)
    assert result.final_score == 80
    assert len(fake_openai.calls("responses")) == 1, "the picture in flight was made (and paid) once"

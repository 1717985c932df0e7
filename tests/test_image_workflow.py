"""ImageRefinementWorkflow on the time-skipping server, provider = real openai SDK → fake server."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from activities.providers.openai_provider import OpenAIProvider
from kit.storage import LocalStore
from models.image import ImageJob, ImageJobResult, ImageOptions, LoopState, Phase, StopReason
from models.settings import SCORING_QUEUE, WORKFLOW_QUEUE, Settings
from starter.image_cmd import local_reference, upload
from tests.conftest import eventually, running_workers
from tests.fake_openai import FakeOpenAI, Fault, png
from workers.registry import QUEUES, build_workers
from workflows.image_refinement import ImageRefinementWorkflow


def openai_provider(fake: FakeOpenAI, timeout: float = 10.0) -> OpenAIProvider:
    return OpenAIProvider(Settings(LLM_BASE_URL=fake.url, LLM_API_KEY="test-key", LLM_TIMEOUT_S=timeout))


async def run_job(env: WorkflowEnvironment, provider, store: LocalStore, job: ImageJob) -> ImageJobResult:
    async with running_workers(env.client, provider, store):
        return await env.client.execute_workflow(
            ImageRefinementWorkflow.run, job, id=f"test-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )


def job(max_iterations: int = 4, threshold: int = 85) -> ImageJob:
    return ImageJob(
        prompt="a red fox in snow",
        options=ImageOptions(background="opaque", size="1024x1024"),
        max_iterations=max_iterations,
        threshold=threshold,
        technical_weight=0,  # these tests script the evaluator's exact scores
    )


async def test_stops_at_threshold(time_env, fake_openai, tmp_path):
    fake_openai.script_scores(40, 90, 10)
    result = await run_job(time_env, openai_provider(fake_openai), LocalStore(tmp_path), job())
    assert result.stopped_because == StopReason.THRESHOLD
    assert [it.score for it in result.iterations] == [40, 90]
    assert (result.best_iteration, result.final_score) == (2, 90)
    assert result.provider == fake_openai.url.split("/")[2], "named after the endpoint it used"
    # iteration 2 continues the conversation; refs are never re-sent
    bodies = [c.body for c in fake_openai.calls("responses")]
    assert "previous_response_id" not in bodies[0]
    assert bodies[1]["previous_response_id"] == result.iterations[0].response_id
    # images are stored once, by deterministic key, and only keys travel
    stored = LocalStore(tmp_path)
    for it in result.iterations:
        assert it.image.key.endswith(f"iteration-{it.number:02d}.png")
        assert (await stored.read(it.image.key)).startswith(b"\x89PNG")


async def test_runs_out_of_iterations_and_keeps_earliest_best_on_ties(time_env, fake_openai, tmp_path):
    fake_openai.script_scores(60, 70, 70)
    result = await run_job(time_env, openai_provider(fake_openai), LocalStore(tmp_path), job(3, 95))
    assert result.stopped_because == StopReason.MAX_ITERATIONS
    assert [it.score for it in result.iterations] == [60, 70, 70]
    assert result.best_iteration == 2
    # each refinement builds on the previous prompt
    prompts = [it.prompt for it in result.iterations]
    assert prompts[0] == "a red fox in snow"
    assert prompts[1].startswith(prompts[0]) and prompts[2].startswith(prompts[1])
    assert len(fake_openai.calls("chat")) == 3 + 2  # 3 evaluations, 2 refinements


async def test_feedback_signal_reaches_next_refinement(time_env, fake_openai, tmp_path):
    fake_openai.script_scores(10, 20)
    fake_openai.fail("responses", Fault(delay=1.0))
    async with running_workers(time_env.client, openai_provider(fake_openai), LocalStore(tmp_path)):
        handle = await time_env.client.start_workflow(
            ImageRefinementWorkflow.run, job(2, 99), id=f"test-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
        await handle.signal(ImageRefinementWorkflow.feedback, "make the fox blue")
        result = await handle.result()
    assert result.iterations[1].human_feedback == ["make the fox blue"]
    refine_requests = [
        c.body["messages"][-1]["content"]
        for c in fake_openai.calls("chat")
        if c.body["response_format"]["json_schema"]["name"] == "RefinedPrompt"
    ]
    assert "Human feedback (must be followed):\n- make the fox blue" in refine_requests[0]


async def test_cancel_returns_best_so_far(time_env, fake_openai, tmp_path):
    fake_openai.script_scores(55)
    fake_openai.fail("responses", Fault(), Fault(delay=30.0))
    async with running_workers(time_env.client, openai_provider(fake_openai, timeout=60), LocalStore(tmp_path)):
        handle = await time_env.client.start_workflow(
            ImageRefinementWorkflow.run, job(4, 99), id=f"test-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )

        async def generating_the_second() -> LoopState | None:
            state = await handle.query(ImageRefinementWorkflow.state)
            return state if state and state.iteration == 2 and state.phase == Phase.GENERATING else None

        state = await eventually(generating_the_second, 30, "iteration 2 to start")
        assert state.scores == [55]
        await handle.cancel()
        result = await handle.result()
    assert result.stopped_because == StopReason.CANCELLED
    assert [it.number for it in result.iterations] == [1]
    assert result.final_score == 55


async def test_malformed_model_output_is_asked_again_then_succeeds(time_env, fake_openai, tmp_path):
    fake_openai.script_scores(88)
    fake_openai.fail("chat", Fault(malformed=True))
    result = await run_job(time_env, openai_provider(fake_openai), LocalStore(tmp_path), job(1, 85))
    assert result.final_score == 88
    assert len(fake_openai.calls("chat")) == 2


async def test_permanent_provider_error_fails_without_retry(time_env, fake_openai, tmp_path):
    fake_openai.fail("responses", Fault(status=401, body={"error": {"message": "bad key", "code": "invalid_api_key"}}))
    with pytest.raises(WorkflowFailureError) as failure:
        await run_job(time_env, openai_provider(fake_openai), LocalStore(tmp_path), job())
    assert "HTTP 401" in str(failure.value.cause.cause)
    assert len(fake_openai.calls("responses")) == 1


async def test_rate_limit_honours_retry_after_then_completes(time_env, fake_openai, tmp_path):
    fake_openai.script_scores(90)
    fake_openai.fail("responses", Fault(status=429, headers={"retry-after": "1"}))
    result = await run_job(time_env, openai_provider(fake_openai), LocalStore(tmp_path), job(1, 85))
    assert result.final_score == 90
    first, second = fake_openai.calls("responses")
    assert second.at - first.at >= 0.9


async def test_offline_provider_runs_the_loop(time_env, tmp_path):
    result = await run_job(time_env, OfflineProvider(), LocalStore(tmp_path), job(3, 100))
    assert result.provider == "offline"
    assert result.stopped_because == StopReason.MAX_ITERATIONS
    scores = [it.score for it in result.iterations]
    assert len(set(scores)) > 1, "offline scores must change as the prompt is refined"
    assert all(it.response_id.startswith("offline-") for it in result.iterations)


async def test_malformed_output_gives_up_after_three_attempts(time_env, fake_openai, tmp_path):
    fake_openai.fail("chat", *(Fault(malformed=True) for _ in range(12)))
    with pytest.raises(WorkflowFailureError) as failure:
        await run_job(time_env, openai_provider(fake_openai), LocalStore(tmp_path), job())
    assert "InvalidModelOutput" in str(failure.value.cause.cause) or "invalid output" in str(failure.value.cause.cause)
    assert len(fake_openai.calls("chat")) == 9, "3 attempts, each asking once and re-asking twice"


async def test_reference_images_are_stored_once_and_sent_on_iteration_one(time_env, fake_openai, tmp_path):
    ref = tmp_path / "style.png"
    ref.write_bytes(png(7))
    fake_openai.script_scores(10, 95)
    store = LocalStore(tmp_path / "store")
    uploaded = local_reference(str(ref))  # as the CLI sends it
    await upload(store, [uploaded])
    refs_job = job().model_copy(update={"references": [uploaded[0]]})
    result = await run_job(time_env, openai_provider(fake_openai), store, refs_job)
    first, second = (c.body["input"][0]["content"] for c in fake_openai.calls("responses"))
    assert first[1]["type"] == "input_image" and len(second) == 1
    stored = list((tmp_path / "store" / "runs" / result.workflow_id / "refs").iterdir())
    assert [p.name for p in stored] == ["00.png"] and stored[0].read_bytes() == png(7)


async def test_bad_reference_fails_at_once_without_retries(time_env, tmp_path):
    ref = tmp_path / "gone.png"
    ref.write_bytes(png(4))
    never_uploaded = job().model_copy(update={"references": [local_reference(str(ref))[0]]})
    with pytest.raises(WorkflowFailureError) as failure:
        await run_job(time_env, OfflineProvider(), LocalStore(tmp_path / "store"), never_uploaded)
    activity_error = failure.value.cause
    assert activity_error.retry_state.name == "NON_RETRYABLE_FAILURE"
    assert "reference 1: not an uploaded artifact" in str(activity_error.cause)


async def test_technical_score_from_the_scoring_queue_is_combined(time_env, tmp_path):
    weighted = ImageJob(prompt="a lighthouse at sunset, orange sky", options=ImageOptions(background="opaque"),
                        max_iterations=2, threshold=100, technical_weight=0.4)  # fmt: skip
    async with running_workers(time_env.client, OfflineProvider(), LocalStore(tmp_path)):
        handle = await time_env.client.start_workflow(
            ImageRefinementWorkflow.run, weighted, id=f"test-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
        result = await handle.result()
        history = await handle.fetch_history()
    for it in result.iterations:
        assert it.technical is not None and 0 < it.technical <= 100 and it.fidelity is not None
        assert it.score == round(0.6 * it.fidelity + 0.4 * it.technical)
        assert set(it.technical_breakdown) == {
            "sharpness",
            "exposure",
            "contrast",
            "colourfulness",
            "noise",
            "blockiness",
        }
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    queues = {a.activity_type.name: a.task_queue.name for a in scheduled}
    assert queues == {
        "require_pollers": "atelier-storage",  # is a scoring worker there?
        "score_images": "atelier-scoring",
        "generate_image": "atelier-images",
        "evaluate_image": "atelier-text",
        "refine_prompt": "atelier-text",
    }


@pytest.mark.slow  # waits on real time
async def test_without_a_scoring_worker_the_loop_scores_on_fidelity_alone(time_env, tmp_path):
    """A deployment running only text, image and storage workers: the technical score waits a bounded time
    for a scoring worker, then the loop goes on with the evaluator's fidelity, and says so."""
    provider = GuardedProvider(OfflineProvider(), None)
    queues = [queue for queue in QUEUES if queue != SCORING_QUEUE]
    loop = ImageJob(prompt="a red fox in snow", max_iterations=2, threshold=100, technical_weight=0.5, scoring_wait_s=5)
    async with contextlib.AsyncExitStack() as stack:
        for worker in build_workers(time_env.client, queues, provider, LocalStore(tmp_path)):
            await stack.enter_async_context(worker)
        result = await time_env.client.execute_workflow(
            ImageRefinementWorkflow.run, loop, id=f"no-scoring-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
    assert result.stopped_because == StopReason.MAX_ITERATIONS and len(result.iterations) == 2
    for iteration in result.iterations:
        assert iteration.technical is None and iteration.score == iteration.fidelity
        assert iteration.note and "technical score unavailable" in iteration.note

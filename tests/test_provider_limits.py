"""Provider limits: rate limits across workers, 429 as back-pressure, fair shares and priority, dollar budgets.

The local OpenAI-compatible server enforces account limits the way hosted providers do (a token bucket
per kind; over it, HTTP 429 with retry-after, x-ratelimit-* headers and a rate_limit_exceeded body).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.providers.call_log import read_log
from activities.providers.guarded import GuardedProvider
from activities.providers.openai_provider import OpenAIProvider
from activities.rate_limits import Gate, Gates, reset_seconds, wait_seconds
from kit.storage import LocalStore
from models.image import ImageJob, ImageOptions
from models.pricing import quote
from models.priority import run_priority
from models.settings import Settings
from models.text import ModelOutput
from models.usage import DEFAULT_PRICES
from models.world import PORTRAIT, WORLD_IMAGE, Budget, WorldJob, WorldResult, WorldState
from tests.conftest import address_of, atelier_env, cli_main, eventually, run_cli, start_worker
from workers.registry import QUEUES, build_workers
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.world import WorldWorkflow

WORKFLOW_QUEUE = "atelier-workflows"


class Answer(ModelOutput):
    text: str


def limited_settings(fake, **extra) -> Settings:
    return Settings(LLM_BASE_URL=fake.url, LLM_API_KEY="sk-test", ATELIER_CALL_LOG=False, **extra)


def share_refused(fake) -> float:
    return len(fake.limited()) / max(1, len(fake.requests))


@contextlib.asynccontextmanager
async def workers(client: Client, settings: Settings, folder, log=None):
    provider = GuardedProvider(
        OpenAIProvider(settings),
        log,
        settings.prices,
        gates=Gates(settings.text_rpm, settings.image_rpm),
    )
    async with contextlib.AsyncExitStack() as stack:
        for worker in build_workers(client, list(QUEUES), provider, LocalStore(folder), settings):
            await stack.enter_async_context(worker)
        yield


# --- headers and the gate ---------------------------------------------------------------------


def test_wait_comes_from_the_providers_headers():
    assert wait_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert wait_seconds({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"}) == 360
    assert wait_seconds({"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "6m0s"}) is None
    assert wait_seconds({"x-ratelimit-reset-tokens": "20ms", "x-ratelimit-reset-requests": "1.5s"}) == 1.5
    assert reset_seconds("1h2m3.5s") == 3723.5 and reset_seconds("soon") is None


async def test_gate_holds_every_call_then_lets_them_through_spaced():
    gate = Gate("image rate limit", spacing_s=0.2)
    gate.close_for(0.5)
    started = time.monotonic()
    passed = await asyncio.gather(*(gate.wait_turn() for _ in range(3)))
    times = sorted(started + w for w in passed)
    assert times[0] - started >= 0.45, "nobody goes while the provider asked us to wait"
    assert times[1] - times[0] >= 0.18 and times[2] - times[1] >= 0.18, "then one at a time"


# --- 429 is back-pressure -----------------------------------------------------------------------


async def test_429s_wait_and_retry_without_failing_the_call(fake_openai, tmp_path):
    from tests.fake_openai import Fault

    limited = Fault(status=429, headers={"retry-after-ms": "30"}, body={"error": {"code": "rate_limit_exceeded"}})
    fake_openai.fail("chat", *[limited] * 10)
    provider = GuardedProvider(OpenAIProvider(limited_settings(fake_openai)), tmp_path / "calls.jsonl")
    answer = (await provider.structured(Answer, "answer", "hello")).value
    assert answer.text and len(fake_openai.calls("chat")) == 11
    outcomes = [entry.get("error", "ok") for entry in read_log(tmp_path / "calls.jsonl")]
    assert outcomes == ["RateLimited"] * 10 + ["ok"], "every 429 is in the call log, none failed the call"


async def test_one_call_told_to_wait_holds_back_the_others(fake_openai):
    from tests.fake_openai import Fault

    fake_openai.fail("chat", Fault(status=429, headers={"retry-after-ms": "800"}))
    fake_openai.delays["chat"] = 0.05
    provider = GuardedProvider(OpenAIProvider(limited_settings(fake_openai)), None)
    first = asyncio.create_task(provider.structured(Answer, "answer", "first"))
    await eventually(lambda: fake_openai.calls("chat"), 10, "the first call", every=0.01)
    refused_at = fake_openai.calls("chat")[0].at
    await asyncio.sleep(0.2)  # the refusal has arrived: the gate is closed
    await asyncio.gather(first, provider.structured(Answer, "answer", "second"))
    later = [r.at for r in fake_openai.calls("chat")[1:]]
    assert len(later) == 2 and min(later) - refused_at >= 0.75, "no request while the provider asked to wait"


async def test_a_call_past_its_deadline_fails_once_with_a_clear_error(fake_openai):
    from tests.fake_openai import Fault

    fake_openai.fail("chat", Fault(status=429, headers={"retry-after": "30"}))
    provider = GuardedProvider(OpenAIProvider(limited_settings(fake_openai)), None, deadlines_s={"text": 5})
    with pytest.raises(ApplicationError) as failure:
        await provider.structured(Answer, "answer", "hello")
    assert failure.value.type == "RateLimitDeadline" and failure.value.non_retryable
    assert "ATELIER_TEXT_DEADLINE_S" in str(failure.value) and len(fake_openai.calls("chat")) == 1


# --- limits across workers ------------------------------------------------------------------------


@pytest.mark.slow  # waits on the test server's real rate limit
async def test_world_at_tight_limits_keeps_every_image(dev_env, fake_openai, tmp_path):
    fake_openai.rate_limit(text_per_minute=120, images_per_minute=30)
    fake_openai.delays["responses"] = 0.3
    settings = limited_settings(fake_openai, ATELIER_TEXT_RPM=120, ATELIER_IMAGE_RPM=30)
    job = WorldJob(prompt="A canal city of lantern makers", characters=2, posts_per_character=2, scoring=False)
    async with workers(dev_env.client, settings, tmp_path):
        result = await dev_env.client.execute_workflow(
            WorldWorkflow.run, job, id="limited-world", task_queue=WORKFLOW_QUEUE
        )
    st = result.status
    assert result.state == WorldState.COMPLETED, st.failures
    assert st.images.created == st.images.planned >= 5
    assert share_refused(fake_openai) <= 0.05, f"{len(fake_openai.limited())} of {len(fake_openai.requests)} refused"


@pytest.mark.slow
async def test_two_worker_processes_stay_within_one_limit_together(dev_env, fake_openai, tmp_path):
    fake_openai.rate_limit(text_per_minute=240, images_per_minute=30)
    fake_openai.delays["responses"] = 0.2
    env = atelier_env(
        tmp_path,
        address_of(dev_env),
        LLM_BASE_URL=fake_openai.url,
        LLM_API_KEY="sk-test",
        ATELIER_TEXT_RPM="240",
        ATELIER_IMAGE_RPM="30",
    )
    processes = [start_worker(env, tmp_path / f"worker-{i}.log") for i in (1, 2)]
    try:
        done = run_cli(
            "world", "Two moons over a salt desert", "--characters", "3", "--posts", "2", "--id", "two-workers",
            env=env, timeout=240,
        )  # fmt: skip
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "COMPLETED" and summary["images"]["created"] == summary["images"]["planned"]
    images = [r.at for r in fake_openai.calls("responses") if not r.limited]
    assert len(images) >= 6
    assert share_refused(fake_openai) <= 0.05, f"{len(fake_openai.limited())} of {len(fake_openai.requests)} refused"
    # 30 a minute is one every 2 s: together the two processes never ran ahead of that (one burst allowed)
    assert (len(images) - 2) * 2.0 <= images[-1] - images[0] + 0.5
    logs = [(tmp_path / f"worker-{i}.log").read_text() for i in (1, 2)]
    assert all("atelier-images" in log for log in logs), "both processes polled the image queue"


# --- fair shares and priority ---------------------------------------------------------------------


@pytest.mark.slow  # waits on real time
async def test_image_loop_goes_ahead_of_a_world_backlog(dev_env, fake_openai, tmp_path):
    fake_openai.rate_limit(images_per_minute=30)
    fake_openai.script_scores(*[90] * 50)
    settings = limited_settings(fake_openai, ATELIER_IMAGE_RPM=30)
    world = WorldJob(prompt="An archipelago of glassblowers", characters=3, posts_per_character=3, scoring=False)
    prompt = f"a lighthouse keeper's cat {uuid.uuid4().hex[:6]}"
    loop = ImageJob(prompt=prompt, max_iterations=1, threshold=0, technical_weight=0)
    client = dev_env.client
    async with workers(client, settings, tmp_path):
        world_run = await client.start_workflow(
            WorldWorkflow.run, world, id="backlog-world", task_queue=WORKFLOW_QUEUE,
            priority=run_priority("world", "backlog-world"),
        )  # fmt: skip
        images_started = lambda: len(fake_openai.calls("responses")) >= 3  # noqa: E731
        await eventually(images_started, 60, "the world's images to start", every=0.1)
        await asyncio.sleep(3)  # its avatars and post images pile up behind the 30/min limit
        started = time.monotonic()
        result = await client.execute_workflow(
            ImageRefinementWorkflow.run, loop, id="urgent-image", task_queue=WORKFLOW_QUEUE,
            priority=run_priority("image", "urgent-image"),
        )  # fmt: skip
        loop_s = time.monotonic() - started
        world_result = await world_run.result()
    images = [r for r in fake_openai.calls("responses") if not r.limited]
    mine = next(i for i, r in enumerate(images) if r.body["input"][0]["content"][0]["text"].startswith(prompt))
    assert result.final_score == 90 and world_result.state == WorldState.COMPLETED
    assert world_result.status.images.created == world_result.status.images.planned
    assert len(images) - 1 - mine >= 3, "world images still waited when the loop's image went"
    assert loop_s < 15, f"the image loop waited {loop_s:.1f} s behind the world"


# --- dollar budgets ----------------------------------------------------------------------------------


async def test_dollar_budget_runs_out_mid_world_and_the_world_keeps_what_it_made(dev_env, fake_openai, tmp_path):
    settings = limited_settings(fake_openai)
    limit = quote(settings, 0, [])
    per_chat = DEFAULT_PRICES["gpt-4o"].cost(120, 30, 0)  # what the test server reports for every chat
    budget = limit.text_floor_usd + 6 * per_chat  # below the ~20 chats the world needs
    job = WorldJob(
        prompt="A library that lends out weather",
        characters=3,
        posts_per_character=4,
        images=False,
        scoring=False,
        budget=Budget(cost=limit.model_copy(update={"max_usd": budget})),
    )
    async with workers(dev_env.client, settings, tmp_path, tmp_path / "calls.jsonl"):
        result = await dev_env.client.execute_workflow(WorldWorkflow.run, job, id="costly", task_queue=WORKFLOW_QUEUE)
    st = result.status
    spent = sum(entry["cost_usd"] for entry in read_log(tmp_path / "calls.jsonl"))
    assert st.budget_exhausted and result.state == WorldState.COMPLETED_WITH_ERRORS
    assert st.spend is not None and st.spend.max_usd == pytest.approx(budget)
    assert spent <= budget and st.spend.spent_usd == pytest.approx(spent), "no call started past the budget"
    assert 0 < st.posts.created < 12 and st.characters.created >= 1, "what was made is kept"
    assert len(fake_openai.calls("chat")) == len(read_log(tmp_path / "calls.jsonl"))
    capped = [c.body.get("max_completion_tokens") for c in fake_openai.calls("chat")]
    assert all(cap and cap <= 4096 for cap in capped), "every call's output was capped to fit its reservation"


async def test_a_dollar_budget_is_spent_before_a_world_stops_and_an_ample_one_never_cuts_it_short(
    time_env, fake_openai, tmp_path
):
    """Worst-case reservations far above real prices (a picture's ~4×, a chat's ~100×) no longer count as
    spent: calls wait for those in flight to settle, and near the end take what is left down to a floor."""
    settings = limited_settings(fake_openai)
    options = [o for _, o in WORLD_IMAGE.values()] + [PORTRAIT]

    async def world(name: str, max_usd: float | None) -> tuple[WorldResult, float]:
        cost = quote(settings, max_usd, options) if max_usd is not None else None
        job = WorldJob(prompt="A harbour of kites", characters=5, posts_per_character=4, scoring=False)
        job.budget = Budget(cost=cost)
        log = tmp_path / f"{name}.jsonl"
        async with workers(time_env.client, settings, tmp_path / name, log):
            result = await time_env.client.execute_workflow(
                WorldWorkflow.run, job, id=f"{name}-{uuid.uuid4().hex[:6]}", task_queue=WORKFLOW_QUEUE
            )
        return result, sum(entry["cost_usd"] for entry in read_log(log))

    full, full_cost = await world("full", None)
    assert full.state == WorldState.COMPLETED and full.status.images.created == full.status.images.planned
    ample, ample_cost = await world("ample", round(2.3 * full_cost, 4))
    assert ample.state == WorldState.COMPLETED and not ample.status.budget_exhausted, ample.status.failures
    assert ample_cost == pytest.approx(full_cost) and ample.status.images.created == full.status.images.created
    budget = round(0.7 * full_cost, 4)
    small, small_cost = await world("small", budget)
    assert small.status.budget_exhausted and small.state == WorldState.COMPLETED_WITH_ERRORS
    assert 0.8 * budget <= small_cost <= budget, f"spent ${small_cost:.4f} of ${budget:.4f}"
    assert small.status.spend is not None and small.status.spend.spent_usd == pytest.approx(small_cost)
    assert small.status.posts.created > 0 and small.status.images.created > 0, "what was made is kept"
    print(f"budget use: full ${full_cost:.4f}; ample ${ample_cost:.4f}; small ${small_cost:.4f} of ${budget:.4f}")


@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (["--max-cost", "-1"], {}, "--max-cost must be a number of US dollars"),
        (["--max-cost", "ten"], {}, "invalid float value: 'ten'"),
        (["--max-cost", "nan"], {}, "--max-cost must be a number of US dollars"),
        (["--max-cost", "1"], {"LLM_API_KEY": "sk-x", "LLM_MODEL": "house-model"}, "'house-model' has no price"),
        ([], {"ATELIER_MAX_COST_USD": "-2"}, "ATELIER_MAX_COST_USD"),
        (["--max-cost", "0.001"], {"LLM_API_KEY": "sk-x"}, "does not cover the first step"),
    ],
)
@pytest.mark.parametrize("command", [["world", "a moon"], ["image", "a cat"], ["meme", "mondays"]])
def test_bad_budgets_exit_2_with_one_line(tmp_path, command, args, extra, message):
    done = cli_main(*command, *args, env=atelier_env(tmp_path, "127.0.0.1:1", **extra))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""


def test_image_quote_follows_the_runs_options():
    settings = Settings(LLM_API_KEY="sk-x")
    low = quote(settings, 1, [ImageOptions(quality="low", size="1024x1024")])
    high = quote(settings, 1, [ImageOptions(quality="high", size="1536x1024")])
    assert 0 < low.image_call_usd < high.image_call_usd
    assert quote(Settings(), 1, [ImageOptions()]).image_call_usd == 0, "the offline provider costs nothing"

"""Cost tracking: tokens and images counted per model call, priced by the table, summed per run."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from temporalio.exceptions import ApplicationError

from activities.providers.call_log import read_log
from activities.providers.guarded import GuardedProvider
from activities.providers.image_routes import image_tokens
from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore, load
from models.image import ImageJob, ImageOptions, RefinePromptRequest, StopReason
from models.settings import WORKFLOW_QUEUE, Settings
from models.usage import ModelUsage, Price, Usage
from models.world import WorldJob, WorldManifest, WorldState
from tests.conftest import running_workers
from tests.fake_openai import CHAT_USAGE, RESPONSES_USAGE
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.world import WorldWorkflow

OPTIONS = ImageOptions(quality="low", size="1024x1024", background="opaque")


def test_usage_adds_up_per_model_and_flags_unpriced_models():
    a = Usage(models={"m": ModelUsage(calls=1, input_tokens=10, output_tokens=5, cost_usd=0.5)})
    b = Usage(models={"m": ModelUsage(calls=2, input_tokens=1, cost_usd=0.25), "x": ModelUsage(calls=1, cost_usd=None)})
    total = a.plus(b)
    assert total.models["m"] == ModelUsage(calls=3, input_tokens=11, output_tokens=5, cost_usd=0.75)
    assert (total.input_tokens, total.output_tokens, total.estimated_cost_usd) == (11, 5, 0.75)
    assert total.unpriced_models == ["x"]
    assert "no price for x" in total.summary()
    dumped = json.loads(total.model_dump_json())
    assert dumped["estimated_cost_usd"] == 0.75 and Usage.model_validate(dumped) == total
    assert Price(input_per_mtok=2, output_per_mtok=8, per_image=0.1).cost(1_000_000, 500_000, 2) == pytest.approx(6.2)


async def test_image_run_reports_tokens_images_and_cost_from_the_price_table(time_env, fake_openai, tmp_path):
    """Three chat calls and two image generations, priced by an ATELIER_PRICES-style override."""
    fake_openai.script_scores(40, 95)
    settings = Settings(
        LLM_BASE_URL=fake_openai.url,
        LLM_API_KEY="sk-test",
        ATELIER_PRICES={"gpt-4o": {"input_per_mtok": 1000, "output_per_mtok": 2000}},
    )
    from activities.providers.openai_provider import OpenAIProvider

    provider = GuardedProvider(OpenAIProvider(settings), tmp_path / "calls.jsonl", settings.prices)
    job = ImageJob(prompt="a lighthouse", options=OPTIONS, max_iterations=3, threshold=85, technical_weight=0)
    async with running_workers(time_env.client, provider, LocalStore(tmp_path)):
        handle = await time_env.client.start_workflow(
            ImageRefinementWorkflow.run, job, id=f"usage-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
        result = await handle.result()
        state = await handle.query(ImageRefinementWorkflow.state)
    assert result.stopped_because == StopReason.THRESHOLD and len(result.iterations) == 2
    text = result.usage.models["gpt-4o"]
    chat_calls, image_calls = 3, 2  # evaluate ×2 + refine; generate ×2 through the Responses API
    assert text.input_tokens == chat_calls * CHAT_USAGE["prompt_tokens"] + image_calls * RESPONSES_USAGE["input_tokens"]
    assert text.output_tokens == (
        chat_calls * CHAT_USAGE["completion_tokens"] + image_calls * RESPONSES_USAGE["output_tokens"]
    )
    assert text.calls == chat_calls + image_calls
    assert text.cost_usd == pytest.approx((text.input_tokens * 1000 + text.output_tokens * 2000) / 1e6)
    image = result.usage.models["gpt-image-1"]
    assert image.images == 2 and image.output_tokens == 2 * image_tokens(OPTIONS)
    assert image.cost_usd == pytest.approx(image.output_tokens * 40 / 1e6)  # the built-in gpt-image-1 price
    assert result.usage.estimated_cost_usd == pytest.approx(text.cost_usd + image.cost_usd)
    assert state is not None and state.usage == result.usage, "the state query shows the same usage"
    logged = read_log(tmp_path / "calls.jsonl")
    assert sum(e["cost_usd"] for e in logged) == pytest.approx(result.usage.estimated_cost_usd)


async def test_unknown_model_is_counted_but_not_priced(time_env, fake_openai, tmp_path):
    settings = Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-test", LLM_MODEL="house-model-7b")
    from activities.providers.openai_provider import OpenAIProvider

    provider = GuardedProvider(OpenAIProvider(settings), None, settings.prices)
    job = ImageJob(prompt="a lighthouse", options=OPTIONS, max_iterations=1, technical_weight=0)
    async with running_workers(time_env.client, provider, LocalStore(tmp_path)):
        result = await time_env.client.execute_workflow(
            ImageRefinementWorkflow.run, job, id=f"usage-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
    assert result.usage.unpriced_models == ["house-model-7b"]
    assert result.usage.models["house-model-7b"].input_tokens > 0
    assert result.usage.estimated_cost_usd > 0, "the image model is still priced"


async def test_world_status_and_result_sum_every_characters_usage(time_env, tmp_path):
    """Offline: estimated tokens, one image per image made, cost 0, the same in the status query."""
    provider = GuardedProvider(OfflineProvider(), tmp_path / "calls.jsonl")
    job = WorldJob(prompt="A desert city of clockmakers", characters=3, posts_per_character=2, scoring=False)
    async with running_workers(time_env.client, provider, LocalStore(tmp_path)):
        handle = await time_env.client.start_workflow(
            WorldWorkflow.run, job, id=f"usage-world-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
        result = await handle.result()
        status = await handle.query(WorldWorkflow.status)
    assert result.state == WorldState.COMPLETED
    usage = result.status.usage
    assert list(usage.models) == ["offline"]
    logged = read_log(tmp_path / "calls.jsonl")
    planned = result.status.calls
    assert usage.models["offline"].calls == len(logged) == planned.llm_calls + planned.image_calls
    assert usage.images == result.status.images.created == sum(e["call"] == "generate_image" for e in logged)
    assert usage.input_tokens == sum(e["tokens"][0] for e in logged) > 0
    assert usage.estimated_cost_usd == 0 and status is not None and status.usage == usage
    manifest = WorldManifest.model_validate_json(await load(LocalStore(tmp_path), result.manifest))
    assert manifest.usage == usage, "`starter result` (the manifest) carries the same usage"


async def test_each_call_returns_its_own_usage_even_when_calls_overlap_or_fail(fake_openai, tmp_path):
    """Usage travels with each call's result (no shared state): two calls at once keep their own counts,
    and a call whose reply breaks its schema still logs the tokens the provider billed for it."""
    from activities.providers.openai_provider import OpenAIProvider
    from models.image import Evaluation
    from tests.fake_openai import Fault

    settings = Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-test")
    provider = GuardedProvider(OpenAIProvider(settings), tmp_path / "calls.jsonl", settings.prices)
    fake_openai.delays["chat"] = 0.05
    first, second = await asyncio.gather(
        provider.evaluate_image(b"\x89PNG", "image/png", "a cat"),
        provider.refine_prompt(RefinePromptRequest(original_prompt="a cat", current_prompt="a cat", feedback=["x"])),
    )
    for called in (first, second):
        assert called.usage.input_tokens == CHAT_USAGE["prompt_tokens"] and called.usage.models["gpt-4o"].calls == 1
    fake_openai.fail("chat", *(Fault(content="Sure! Here is your JSON.") for _ in range(3)))
    with pytest.raises(ApplicationError, match="Evaluation from gpt-4o"):
        await provider.structured(Evaluation, "evaluate", "a cat")
    failed = read_log(tmp_path / "calls.jsonl")[-1]
    asked = [3 * CHAT_USAGE["prompt_tokens"], 3 * CHAT_USAGE["completion_tokens"]]
    assert failed["ok"] is False and failed["tokens"] == asked, "the reply and both re-asks, all billed"
    assert failed["cost_usd"] > 0, "a paid call that failed afterwards is still counted"


def test_world_accounts_hold_a_running_characters_allowance_until_its_result_settles_it():
    from models.usage import CostLimit
    from models.world import Budget, CallUsage, CharacterResult, ProgressDelta
    from workflows.budget import Ledger
    from workflows.world_accounts import WorldAccounts

    cost = CostLimit(max_usd=1.0, text_call_usd=0.1, image_call_usd=0.2)
    accounts = WorldAccounts(budget=Budget(llm_calls=10, image_calls=4, cost=cost), ledger=Ledger(cost, settling=True))
    assert accounts.count("text")
    reserved = accounts.ledger.reserve("text")
    need = CallUsage(llm_calls=5, image_calls=3)
    assert accounts.worst_case(need) == pytest.approx(1.1)
    assert not accounts.can_fund(need), "a call in flight may still come back unspent: wait for it"
    accounts.ledger.release(reserved)
    assert accounts.can_fund(need)
    share = accounts.share(need)
    assert share.calls == need and share.cost is not None
    assert share.cost.max_usd == pytest.approx(1.0), "all that is left"
    accounts.open("ada", share)
    assert accounts.free_calls() == CallUsage(llm_calls=4, image_calls=1), "the allowance is held"
    assert not accounts.ledger.fits("image") and accounts.ledger.in_flight(), "the character's dollars are held"
    used = Usage(models={"m": ModelUsage(calls=2, cost_usd=0.15)})
    accounts.report(ProgressDelta(username="ada", calls=CallUsage(llm_calls=2), usage=used))
    assert accounts.totals()[1] == used, "a running character's report counts"
    accounts.settle(CharacterResult(username="ada", calls=CallUsage(llm_calls=2), usage=used))
    assert accounts.free_calls() == CallUsage(llm_calls=7, image_calls=4), "what it did not use flows back"
    calls, usage, spend = accounts.totals()
    assert calls == CallUsage(llm_calls=3) and usage == used and spend is not None and spend.spent_usd == 0.15
    assert not accounts.exhausted and not accounts.ledger.in_flight()
    assert not accounts.count("image", 5) and accounts.exhausted, "the call budget refusing is exhaustion too"


def test_near_the_end_a_call_is_given_what_is_left_down_to_its_floor():
    from models.usage import BudgetExhausted, CostLimit
    from workflows.budget import Ledger

    cost = CostLimit(max_usd=0.1, text_call_usd=0.06, image_call_usd=0.045, text_floor_usd=0.006, image_floor_usd=0.03)
    ledger = Ledger(cost, settling=True)
    assert ledger.fits("text", "image") and ledger.reserve("text") == pytest.approx(0.06)
    assert ledger.reserve("image") == pytest.approx(0.04), "all that is left, above the image floor"
    assert not ledger.fits("text") and ledger.in_flight(), "nothing left while both are in flight"
    with pytest.raises(BudgetExhausted):
        ledger.reserve("text")
    ledger.release(0.06)
    ledger.book(Usage(models={"m": ModelUsage(calls=1, cost_usd=0.001)}))
    assert ledger.fits("text") and ledger.free_usd() == pytest.approx(0.059)
    before = Ledger(cost)  # runs from before the budget patch: a call needs its whole worst case
    assert before.fits("text") and not before.fits("text", "image")

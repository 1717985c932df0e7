"""Every attempt that reached the provider is booked: a retried call's spend is what the provider billed for
all of its attempts, and all of them together stay within the one reservation the run made for the call."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle

from activities.providers.guarded import GuardedProvider
from activities.providers.openai_provider import OpenAIProvider
from kit.connection import connect
from kit.storage import LocalStore
from models.image import ImageJob, ImageOptions, LoopState
from models.settings import WORKFLOW_QUEUE, Settings
from models.usage import CostLimit, Price, Usage
from tests.conftest import address_of, running_workers
from tests.fake_openai import CHAT_USAGE, RESPONSES_USAGE, FakeOpenAI, Fault
from workflows.image_refinement import ImageRefinementWorkflow

TEXT = Price(input_per_mtok=2.5, output_per_mtok=10.0)  # gpt-4o's list price
CHAT_USD = TEXT.cost(CHAT_USAGE["prompt_tokens"], CHAT_USAGE["completion_tokens"], 0)
BUDGET = CostLimit(max_usd=2.0, text_call_usd=0.5, image_call_usd=0.5)


def provider(fake: FakeOpenAI, prices: dict[str, Price] | None = None) -> GuardedProvider:
    settings = Settings(LLM_BASE_URL=fake.url, LLM_API_KEY="test-key", LLM_MODEL="gpt-4o", EVAL_MODEL="gpt-4o")
    return GuardedProvider(OpenAIProvider(settings), None, prices or {"gpt-4o": TEXT, "gpt-image-1": Price()})


def job(cost: CostLimit = BUDGET) -> ImageJob:
    return ImageJob(
        prompt="a red fox in snow",
        options=ImageOptions(background="opaque", size="1024x1024"),
        max_iterations=1,
        threshold=85,
        technical_weight=0,
        cost=cost,
    )


def billed(fake: FakeOpenAI) -> Usage:
    """What the fake provider answered, as the run should book it: every chat request and generation."""
    chats, generations = len(fake.calls("chat")), len(fake.calls("responses"))
    models = {
        "gpt-4o": {
            "calls": chats + generations,
            "input_tokens": chats * CHAT_USAGE["prompt_tokens"] + generations * RESPONSES_USAGE["input_tokens"],
            "output_tokens": chats * CHAT_USAGE["completion_tokens"] + generations * RESPONSES_USAGE["output_tokens"],
        }
    }
    return Usage.model_validate({"models": models})


def assert_booked(usage: Usage, fake: FakeOpenAI) -> None:
    expected = billed(fake).models["gpt-4o"]
    booked = usage.models["gpt-4o"]
    assert (booked.calls, booked.input_tokens, booked.output_tokens) == (
        expected.calls,
        expected.input_tokens,
        expected.output_tokens,
    ), "booked what the provider answered, every attempt included"
    cost = TEXT.cost(expected.input_tokens, expected.output_tokens, 0)
    assert usage.estimated_cost_usd == pytest.approx(cost, abs=1e-6)


async def final_state(handle: WorkflowHandle) -> LoopState:
    state = await handle.query(ImageRefinementWorkflow.state)
    assert state is not None
    return state


async def test_a_reply_that_never_validates_is_booked_for_all_three_attempts_within_the_budget(
    time_env, fake_openai, tmp_path
):
    fake_openai.fail("chat", *(Fault(malformed=True) for _ in range(12)))
    async with running_workers(time_env.client, provider(fake_openai), LocalStore(tmp_path)):
        handle = await time_env.client.start_workflow(
            ImageRefinementWorkflow.run, job(), id=f"booked-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        state = await final_state(handle)
    assert "invalid output (3/3)" in str(failure.value.cause.cause), "still gives up after three attempts"
    assert len(fake_openai.calls("chat")) == 9, "3 attempts, each asking once and re-asking twice"
    assert_booked(state.usage, fake_openai)
    assert state.usage.models["gpt-4o"].calls == 9 + 1, "the evaluation booked three times (3 requests each)"
    assert state.spend is not None
    assert state.spend.spent_usd == pytest.approx(state.usage.estimated_cost_usd)
    assert state.spend.spent_usd <= BUDGET.max_usd and state.spend.reserved_usd == 0
    assert state.usage.estimated_cost_usd == pytest.approx(9 * CHAT_USD + TEXT.cost(50, 10, 0), abs=1e-6)


async def test_a_call_that_succeeds_on_a_later_attempt_books_every_attempt(time_env, fake_openai, tmp_path):
    fake_openai.script_scores(88)
    fake_openai.fail("chat", *(Fault(malformed=True) for _ in range(3)))  # attempt 1: the reply and both re-asks
    async with running_workers(time_env.client, provider(fake_openai), LocalStore(tmp_path)):
        result = await time_env.client.execute_workflow(
            ImageRefinementWorkflow.run, job(), id=f"booked-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
    assert result.final_score == 88
    assert len(fake_openai.calls("chat")) == 4, "attempt 1: three malformed replies; attempt 2: one good one"
    assert_booked(result.usage, fake_openai)
    assert result.spend is not None and result.spend.spent_usd == pytest.approx(result.usage.estimated_cost_usd)


async def test_retries_share_the_one_reservation(time_env, fake_openai, tmp_path):
    """A reservation that fits one attempt of this call: a retry is given what the first attempt left, and
    when that cannot fit a request, the call stops within the reservation (the old code gave every attempt
    the whole reservation again: three attempts spent three times it while the run booked one)."""
    per_output_token = 1e-4  # output only: a request's worst case is its output cap, at least 64 tokens
    prices = {"gpt-4o": Price(output_per_mtok=per_output_token * 1e6), "gpt-image-1": Price()}
    reservation = 70 * per_output_token  # room for one request: 64+ tokens; the fake's reply uses 30
    cost = CostLimit(max_usd=1.0, text_call_usd=reservation, image_call_usd=0.2)
    fake_openai.fail("chat", *(Fault(malformed=True) for _ in range(12)))
    async with running_workers(time_env.client, provider(fake_openai, prices), LocalStore(tmp_path)):
        handle = await time_env.client.start_workflow(
            ImageRefinementWorkflow.run, job(cost), id=f"booked-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        state = await final_state(handle)
    refused = failure.value.cause.cause  # the evaluation's ActivityError's cause
    assert getattr(refused, "type", None) == "ReservationSpent", "the retry cannot fit what the first attempt left"
    assert state.spend and not state.spend.exhausted, "the call's reservation ran out, not the run's budget"
    chats = len(fake_openai.calls("chat"))
    assert chats == 1, "attempt 1 asked once (a re-ask did not fit); attempt 2 sent nothing"
    spent_on_evaluation = chats * CHAT_USAGE["completion_tokens"] * per_output_token
    assert spent_on_evaluation <= reservation + 1e-9, f"{chats} evaluation requests passed the one reservation"
    booked = state.usage.models["gpt-4o"]
    assert booked.calls == chats + len(fake_openai.calls("responses"))
    assert state.usage.estimated_cost_usd == pytest.approx(
        spent_on_evaluation + RESPONSES_USAGE["output_tokens"] * per_output_token, abs=1e-9
    )


async def test_failed_attempts_are_booked_with_the_payload_codec_on(dev_env, fake_openai, tmp_path):
    """The usage travels in the failure's details, which the codec encrypts; the workflow reads it back."""
    import base64
    import os

    sealed = await connect(
        Settings(TEMPORAL_ADDRESS=address_of(dev_env), ATELIER_CODEC_KEY=base64.b64encode(os.urandom(32)).decode())
    )
    fake_openai.script_scores(88)
    fake_openai.fail("chat", *(Fault(malformed=True) for _ in range(3)))
    async with running_workers(sealed, provider(fake_openai), LocalStore(tmp_path)):
        result = await sealed.execute_workflow(
            ImageRefinementWorkflow.run, job(), id=f"booked-sealed-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
    assert len(fake_openai.calls("chat")) == 4
    assert_booked(result.usage, fake_openai)


def test_a_failure_carries_the_usage_as_it_was_raised():
    """The error re-raised with the usage keeps what retries and messages read; a cancellation, and an
    error after nothing was used, pass as they are."""
    import asyncio
    from datetime import timedelta

    from temporalio.exceptions import ApplicationError, CancelledError

    from activities.heartbeat import carrying_usage
    from models.usage import ModelUsage, usage_in

    used = Usage(models={"gpt-4o": ModelUsage(calls=3, input_tokens=360, output_tokens=90, cost_usd=0.0018)})
    cause = ValueError("not JSON")
    err = ApplicationError("invalid output (1/3)", {"reason": "r"}, type="InvalidModelOutput")
    err.__cause__ = cause
    carried = carrying_usage(err, used)
    assert isinstance(carried, ApplicationError) and carried is not err
    assert (carried.message, carried.type, carried.non_retryable) == (err.message, err.type, False)
    assert carried.details[0] == {"reason": "r"}, "the error's own details come first, as before"
    assert carried.__cause__ is cause and usage_in(carried.details) == used
    late = ApplicationError("slow down", type="ProviderHTTP503", next_retry_delay=timedelta(seconds=3))
    assert carrying_usage(late, used).next_retry_delay == timedelta(seconds=3)  # type: ignore[union-attr]
    final = carrying_usage(ApplicationError("no", type="Refused", non_retryable=True), used)
    assert isinstance(final, ApplicationError) and final.non_retryable
    other = carrying_usage(KeyError("x"), used)
    assert isinstance(other, ApplicationError) and other.type == "KeyError" and not other.non_retryable
    for passes in (asyncio.CancelledError(), CancelledError("cancelled")):
        assert carrying_usage(passes, used) is passes
    assert carrying_usage(err, Usage()) is err, "nothing used: nothing to carry"

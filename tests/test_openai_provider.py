"""The real openai SDK against the local OpenAI-compatible server: requests and error mapping."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities.providers.base import ReferenceInput
from activities.providers.openai_provider import OpenAIProvider
from activities.rate_limits import retry_after
from models.image import Evaluation, ImageOptions
from models.settings import Settings
from tests.fake_openai import Fault, error_body, png

OPTIONS = ImageOptions(quality="low", size="1024x1024", background="opaque", format="png")


@pytest.fixture
def provider(fake_openai) -> OpenAIProvider:
    return OpenAIProvider(Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-test-secret", LLM_TIMEOUT_S=0.5))


async def test_structured_chat_sends_json_schema_and_validates(provider, fake_openai):
    fake_openai.script_scores(73)
    verdict = await provider.evaluate_image(png(1), "image/png", "a cat")
    assert verdict == Evaluation(score=73, feedback=verdict.feedback)
    body = fake_openai.calls("chat")[0].body
    assert body["response_format"]["json_schema"]["name"] == "Evaluation"
    assert body["response_format"]["json_schema"]["schema"]["properties"]["score"]["maximum"] == 100
    image_part = body["messages"][1]["content"][1]
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")


async def test_responses_image_generation_with_references_then_previous_response(provider, fake_openai):
    ref = ReferenceInput(png(9), "image/png")
    first = await provider.generate_image("a cat", OPTIONS, [ref], None)
    second = await provider.generate_image("a blue cat", OPTIONS, [ref], first.response_id)
    assert first.data.startswith(b"\x89PNG") and first.response_id == "resp_1"
    assert second.response_id == "resp_2"
    one, two = (c.body for c in fake_openai.calls("responses"))
    assert [p["type"] for p in one["input"][0]["content"]] == ["input_text", "input_image"]
    assert one["tools"][0] == {
        "type": "image_generation", "quality": "low", "size": "1024x1024",
        "background": "opaque", "output_format": "png",
    }  # fmt: skip
    assert [p["type"] for p in two["input"][0]["content"]] == ["input_text"]
    assert two["previous_response_id"] == "resp_1"


async def test_falls_back_to_images_api_without_responses_api(provider, fake_openai):
    fake_openai.responses_api = False
    result = await provider.generate_image("a cat", OPTIONS, [], None)
    assert result.data.startswith(b"\x89PNG")
    assert fake_openai.calls("images")[0].body["prompt"] == "a cat"
    await provider.generate_image("a cat", OPTIONS, [], None)
    assert len(fake_openai.calls("responses")) == 1, "the missing Responses API is remembered"
    assert result.note is None, "nothing was dropped: no references, no previous image"


async def test_fallback_says_what_it_could_not_carry(provider, fake_openai):
    fake_openai.responses_api = False
    result = await provider.generate_image("a cat", OPTIONS, [ReferenceInput(png(9), "image/png")], "resp_1")
    assert result.note and "reference images and the previous image" in result.note
    assert "input_image" not in json.dumps(fake_openai.calls("images")[0].body)


async def test_a_missing_model_is_a_clear_error_not_a_fallback(provider, fake_openai):
    missing = Fault(status=404, body=error_body("The model `gpt-4x` does not exist", "model_not_found"))
    fake_openai.fail("responses", missing)
    with pytest.raises(ApplicationError) as failure:
        await provider.generate_image("a cat", OPTIONS, [], None)
    assert failure.value.non_retryable and failure.value.type == "ModelNotFound"
    assert "check LLM_MODEL" in str(failure.value) and "'gpt-4o'" in str(failure.value)
    assert not fake_openai.calls("images"), "no silent switch to images.generate"
    await provider.generate_image("a cat", OPTIONS, [], None)
    assert len(fake_openai.calls("responses")) == 2 and not fake_openai.calls("images"), "Responses API kept"


@pytest.mark.parametrize(
    ("fault", "retryable", "delay"),
    [
        (Fault(status=429, headers={"retry-after": "7"}), True, timedelta(seconds=7)),
        (Fault(status=429, headers={"retry-after-ms": "1500"}), True, timedelta(milliseconds=1500)),
        (Fault(status=500), True, None),
        (Fault(status=503), True, None),
        (Fault(status=408), True, None),
        (Fault(status=409), True, None),
        (
            Fault(status=400, body=error_body("Your request was rejected", "content_policy_violation")),
            False,
            None,
        ),
        (Fault(status=401, body=error_body("Incorrect API key", "invalid_api_key")), False, None),
        (Fault(status=403), False, None),
        (Fault(status=429, body=error_body("You exceeded your quota", "insufficient_quota")), False, None),
    ],
)
async def test_error_mapping(provider, fake_openai, fault, retryable, delay):
    fake_openai.fail("chat", fault)
    with pytest.raises(ApplicationError) as err:
        await provider.evaluate_image(png(1), "image/png", "a cat")
    assert err.value.non_retryable is (not retryable)
    assert err.value.next_retry_delay == delay
    assert f"HTTP {fault.status}" in err.value.message
    assert "sk-test-secret" not in err.value.message


async def test_not_found_model_is_permanent(provider, fake_openai):
    fake_openai.fail("chat", Fault(status=404, body=error_body("model gpt-x does not exist", "model_not_found")))
    with pytest.raises(ApplicationError) as err:
        await provider.evaluate_image(png(1), "image/png", "a cat")
    assert err.value.non_retryable and "does not exist" in err.value.message


async def test_timeout_and_connection_errors_are_retryable(provider, fake_openai):
    fake_openai.fail("chat", Fault(delay=2.0))
    with pytest.raises(ApplicationError) as err:
        await provider.evaluate_image(png(1), "image/png", "a cat")
    assert err.value.type == "ProviderTimeout" and not err.value.non_retryable
    fake_openai.stop()
    with pytest.raises(ApplicationError) as err:
        await provider.evaluate_image(png(1), "image/png", "a cat")
    assert err.value.type == "ProviderUnavailable" and not err.value.non_retryable


async def test_malformed_json_outside_an_activity_is_final(provider, fake_openai):
    fake_openai.fail("chat", *(Fault(malformed=True) for _ in range(3)))  # the reply and both re-asks
    with pytest.raises(ApplicationError) as err:
        await provider.evaluate_image(png(1), "image/png", "a cat")
    assert err.value.type == "InvalidModelOutput" and err.value.non_retryable


def test_retry_after_parsing():
    assert retry_after({"retry-after": "2.5"}) == timedelta(seconds=2.5)
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == timedelta(milliseconds=250)
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == timedelta(0)
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None

"""What real providers answer, handled: structured output that holds across models (fences, prose, a reply
that does not validate re-asked inside the attempt, cut or refused replies), errors inside HTTP 200 bodies,
402s of both kinds and the error-body shapes of the ecosystem."""

from __future__ import annotations

import json
import uuid

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from temporalio.exceptions import ApplicationError

from activities.errors import error_code
from activities.providers.guarded import GuardedProvider
from activities.providers.openai_provider import OpenAIProvider
from activities.providers.structured import json_text, restore_defaults, strict_schema
from activities.rate_limits import RateLimited
from kit.storage import LocalStore
from models.image import Evaluation, ImageJob, StopReason
from models.meme import MemeJob
from models.settings import IMAGE_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE, Settings
from models.world import CharacterBatch, PostBatch, WorldJob, WorldState
from tests.conftest import address_of, atelier_env, run_cli, running_workers, start_worker
from tests.fake_openai import CHAT_USAGE, Fault
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.meme import MemeWorkflow
from workflows.world import WorldWorkflow

VALID = json.dumps({"score": 70, "feedback": "crisp"})


def provider_for(fake, **extra) -> GuardedProvider:
    return GuardedProvider(OpenAIProvider(Settings(LLM_BASE_URL=fake.url, LLM_API_KEY="sk-answers", **extra)), None)


@pytest.mark.parametrize(
    "content",
    [f"```json\n{VALID}\n```", f"Here is my evaluation:\n{VALID}\nHope that helps!"],
    ids=["fenced", "prose"],
)
async def test_a_fenced_or_wrapped_reply_is_read_without_asking_again(fake_openai, content):
    fake_openai.fail("chat", Fault(content=content))
    called = await provider_for(fake_openai).structured(Evaluation, "evaluate", "a cat")
    assert called.value == Evaluation(score=70, feedback="crisp") and len(fake_openai.calls("chat")) == 1


async def test_a_reply_that_does_not_validate_is_asked_again_inside_the_attempt(fake_openai):
    fake_openai.fail("chat", Fault(content=json.dumps({"score": "high", "feedback": "x"})))
    called = await provider_for(fake_openai).structured(Evaluation, "evaluate", "a cat")
    _, again = fake_openai.calls("chat")
    assert again.body["messages"][-2] == {"role": "assistant", "content": '{"score": "high", "feedback": "x"}'}
    assert "score" in again.body["messages"][-1]["content"] and "not valid" in again.body["messages"][-1]["content"]
    assert called.usage.models["gpt-4o"].calls == 2, "both calls counted"
    assert called.usage.input_tokens == 2 * CHAT_USAGE["prompt_tokens"], "and priced"


async def test_a_reply_cut_at_the_token_cap_is_a_clear_error_and_not_asked_again(fake_openai):
    fake_openai.fail("chat", Fault(content='{"score": 70, "feedb', finish_reason="length"))
    with pytest.raises(ApplicationError) as err:
        await provider_for(fake_openai).structured(Evaluation, "evaluate", "a cat", max_cost_usd=0.05)
    cap = fake_openai.calls("chat")[0].body["max_completion_tokens"]
    assert err.value.type == "OutputTruncated" and err.value.non_retryable
    assert f"max_completion_tokens={cap}" in err.value.message and len(fake_openai.calls("chat")) == 1


@pytest.mark.parametrize(
    ("fault", "category"),
    [
        (Fault(refusal="I can't help with that request."), "refusal"),
        (Fault(content="", finish_reason="content_filter"), "content_filter"),
        (Fault(status=400, body={"error": {"message": "Your request was rejected by the safety system.",
                                           "type": "image_generation_user_error", "code": "moderation_blocked"}}),
         "moderation_blocked"),
        (Fault(status=403, body={"error": {"code": 403, "message": "Input was flagged",
                                           "metadata": {"reasons": ["violence"], "flagged_input": "…"}}}),
         "moderation"),
    ],
    ids=["message.refusal", "content_filter", "openai-moderation", "openrouter-403"],
)  # fmt: skip
async def test_a_safety_refusal_is_a_typed_outcome_with_the_reason(fake_openai, fault, category):
    fake_openai.fail("chat", fault)
    with pytest.raises(ApplicationError) as err:
        await provider_for(fake_openai).structured(Evaluation, "evaluate", "a cat")
    assert err.value.type == "Refused" and err.value.non_retryable and len(fake_openai.calls("chat")) == 1
    details = err.value.details[0]
    assert details["category"] == category and details["reason"]


@pytest.mark.parametrize(
    ("error", "kind", "retryable"),
    [
        ({"code": 502, "message": "Upstream provider error"}, "ProviderHTTP502", True),
        ({"code": 429, "message": "Rate limited upstream"}, "RateLimited", True),
        ({"code": 400, "message": "Bad request upstream"}, "ProviderHTTP400", False),
    ],
)
async def test_an_error_inside_a_200_body_is_handled_like_its_status(fake_openai, error, kind, retryable):
    body = {
        "id": "gen-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o",
        "error": error,
        "choices": [{"index": 0, "finish_reason": "error", "message": {"role": "assistant", "content": ""}}],
    }
    fake_openai.fail("chat", Fault(body=body))
    bare = OpenAIProvider(Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-answers"))  # no 429 waiting
    with pytest.raises(ApplicationError) as err:
        await bare.structured(Evaluation, "evaluate", "a cat")
    assert err.value.type == kind and isinstance(err.value, RateLimited) == (kind == "RateLimited")
    assert err.value.non_retryable is not retryable and error["message"] in err.value.message


async def test_402_is_one_line_about_credits_or_a_wait_when_the_provider_says_when(fake_openai):
    credits = {"error": {"code": 402, "message": "Insufficient credits. Add more using https://…"}}
    fake_openai.fail("chat", Fault(status=402, body=credits))
    with pytest.raises(ApplicationError) as err:
        await provider_for(fake_openai).structured(Evaluation, "evaluate", "a cat")
    assert err.value.type == "InsufficientCredits" and err.value.non_retryable
    assert "add credits" in err.value.message and "\n" not in err.value.message
    fake_openai.fail("chat", Fault(status=402, headers={"retry-after": "1"}, body=credits), Fault(content=VALID))
    called = await provider_for(fake_openai).structured(Evaluation, "evaluate", "a cat")
    assert called.value.score == 70, "a spending limit that resets: waited, then answered"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"error": {"message": "m", "code": "model_not_found"}}, "model_not_found"),
        ({"error": {"message": "m", "code": 404}}, "404"),
        ({"error": {"message": "m", "code": None, "type": "invalid_request_error"}}, "invalid_request_error"),
        ({"object": "error", "message": "m", "type": "BadRequestError", "code": 400}, "400"),
        ({"detail": "Not Found"}, None),
    ],
    ids=["nested-string", "nested-int", "nested-null", "flat-vllm", "fastapi"],
)
def test_error_codes_of_every_shape(body, code):
    response = httpx.Response(400, request=httpx.Request("POST", "http://x/v1/chat/completions"))
    assert error_code(openai.BadRequestError("m", response=response, body=body)) == code


def test_strict_schemas_close_every_object_and_give_back_defaults():
    schema = PostBatch.model_json_schema()
    strict = strict_schema(schema)

    def objects(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for item in node:
                yield from objects(item)

    closed = list(objects(strict))
    assert closed and all(o["additionalProperties"] is False for o in closed)
    assert all(set(o["required"]) == set(o["properties"]) for o in closed), "every property required"
    assert "maxLength" not in json.dumps(strict), "keywords strict mode refuses are left to pydantic"
    batch = CharacterBatch.model_json_schema()
    assert strict_schema(batch)["additionalProperties"] is False
    post = {"topic": "t", "brief": "b", "emotional_tone": "calm", "post_type": "photo", "has_image": True}
    reply = {"narrative_arc": "a year", "character_development": "grows", "posts": [post], "recurring_themes": None}
    restored = restore_defaults(reply, schema)
    assert "recurring_themes" not in restored, "a null for a defaulted field gives the default back"
    assert PostBatch.model_validate(restored).recurring_themes == []
    assert json_text('Sure:\n```json\n{"a": 1}\n```') == '{"a": 1}' and json_text('x {"a": 1} y') == '{"a": 1}'


async def test_openrouter_routes_only_to_providers_that_honour_the_schema():
    seen: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        reply = {
            "id": "gen-1",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "usage": CHAT_USAGE,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": VALID}}],
        }
        return httpx.Response(200, json=reply)  # fmt: skip

    openrouter = OpenAIProvider(Settings(LLM_BASE_URL="https://openrouter.ai/api/v1", LLM_API_KEY="sk-or"))
    openrouter.clients["text"] = AsyncOpenAI(
        base_url="https://openrouter.ai/api/v1",
        api_key="sk-or",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
    )
    assert (await openrouter.structured(Evaluation, "evaluate", "a cat")).score == 70
    assert seen[0]["provider"] == {"require_parameters": True}
    assert seen[0]["response_format"]["json_schema"]["strict"] is True


# --- safety refusals are outcomes ---------------------------------------------------------------------------


async def test_a_refused_picture_is_rewritten_within_policy_and_the_loop_goes_on(time_env, fake_openai, tmp_path):
    fake_openai.script_scores(60, 70)
    job = ImageJob(prompt="[refuse] a knight in a burning village", max_iterations=3, threshold=100, technical_weight=0)
    provider = OpenAIProvider(Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-answers"))
    async with running_workers(time_env.client, provider, LocalStore(tmp_path)):
        result = await time_env.client.execute_workflow(
            ImageRefinementWorkflow.run, job, id=f"refused-{uuid.uuid4().hex[:6]}", task_queue=WORKFLOW_QUEUE
        )
    [refusal] = result.refusals
    assert refusal.iteration == 1 and refusal.category == "moderation_blocked" and "safety system" in refusal.reason
    assert [it.number for it in result.iterations] == [2, 3], "the refused iteration counts"
    assert result.stopped_because == StopReason.MAX_ITERATIONS and result.final_score == 70
    sent = fake_openai.generation_prompts()
    assert sent.count(job.prompt) == 1 and "[refuse]" not in sent[1], "never sent again unchanged"


async def test_a_refused_world_picture_keeps_its_post(time_env, fake_openai, tmp_path):
    fake_openai.refuse_text = "image_prompt"  # every post's picture (not the world's, not the avatars)
    job = WorldJob(prompt="A border town", characters=1, posts_per_character=2, scoring=False)
    provider = OpenAIProvider(Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-answers"))
    store = LocalStore(tmp_path)
    async with running_workers(time_env.client, provider, store):
        result = await time_env.client.execute_workflow(
            WorldWorkflow.run, job, id=f"refused-world-{uuid.uuid4().hex[:6]}", task_queue=WORKFLOW_QUEUE
        )
    status = result.status
    assert result.state == WorldState.COMPLETED_WITH_ERRORS and status.posts.created == 2, "the posts are kept"
    refused = [f for f in status.failures if "refused by the provider's safety system" in f.error]
    assert refused and all(f.step.endswith("image") for f in refused), "status names each"
    [character] = [json.loads(await store.read(k)) for k in await store.keys(f"worlds/{result.world_id}/characters")
                   if k.endswith("character.json")]  # fmt: skip
    pictured = [post for post in character["posts"] if post["idea"]["has_image"]]
    assert len(pictured) == len(refused), "each refused picture's post is in the manifest"
    assert all(post["image"] is None and "safety system" in post["image_refused"] for post in pictured)
    gallery = (await store.read(result.gallery.key)).decode()
    assert gallery.count("picture refused by the provider") == len(refused)


@pytest.mark.slow
async def test_when_every_iteration_is_refused_the_cli_says_so_and_exits_0(dev_env, fake_openai, tmp_path):
    env = atelier_env(tmp_path, address_of(dev_env), LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-answers")
    worker = start_worker(env, tmp_path / "worker.log", (WORKFLOW_QUEUE, TEXT_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE))
    try:
        args = ["image", "[refuse-always] a battle", "--max-iterations", "2", "--technical-weight", "0"]
        done = run_cli(*args, "--out", str(tmp_path / "out"), env=env)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["stopped_because"] == "refused" and result["best_image_url"] is None
    assert [r["iteration"] for r in result["refusals"]] == [1, 2] and result["image_history"] == []
    assert all(r["category"] == "moderation_blocked" for r in result["refusals"])


async def test_a_refused_meme_picture_falls_back_to_a_plain_background(time_env, fake_openai, tmp_path):
    fake_openai.refuse_text = "no text, no letters"  # every scene prompt
    job = MemeJob(topic="mondays", format="drake", max_refinements=0, use_cache=False)
    provider = OpenAIProvider(Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-answers"))
    async with running_workers(time_env.client, provider, LocalStore(tmp_path)):
        result = await time_env.client.execute_workflow(
            MemeWorkflow.run, job, id=f"refused-meme-{uuid.uuid4().hex[:6]}", task_queue=WORKFLOW_QUEUE
        )
    assert result.degraded and "refused by the provider's safety system" in result.degraded
    assert len(fake_openai.calls("responses")) == 2, "each picture asked once: a refusal is not retried"

"""Any provider for any kind of call: the local test server behaves like OpenAI, OpenRouter, Ollama or LocalAI as
each documents, and a small world and an image loop run end to end through each (README "Providers")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from activities.providers import make_provider
from activities.providers.call_log import read_log
from activities.providers.endpoint_check import endpoint_warnings
from kit.storage import LocalStore
from models.catalog import from_settings, read_catalog
from models.image import ImageJob, ImageOptions
from models.settings import WORKFLOW_QUEUE, Settings
from models.usage import Price
from models.world import WorldJob, WorldState
from starter.image_cmd import local_reference, upload
from tests.conftest import atelier_env, free_port, running_workers
from tests.fake_openai import OPENROUTER_IMAGE_COST, OPENROUTER_TEXT_COST, FakeOpenAI, png
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.world import WorldWorkflow

# Per row: the settings a user copies from the README (the base URL is the test server's) and the route
# that makes its pictures.
ROWS = {
    "openai": ({}, "/responses"),
    "openrouter": (
        {
            "LLM_MODEL": "google/gemini-2.5-flash",
            "IMAGE_MODEL": "google/gemini-2.5-flash-image",
            "ATELIER_STRICT_OUTPUT": "on",
        },
        "/chat",
    ),
    "ollama": ({"LLM_MODEL": "llama3.2", "EVAL_MODEL": "llava", "IMAGE_API": "offline"}, None),
    "vllm": (
        {"LLM_MODEL": "Qwen/Qwen2.5-7B-Instruct", "EVAL_MODEL": "Qwen/Qwen2.5-VL-7B-Instruct", "IMAGE_API": "offline"},
        None,
    ),
    "localai": ({"LLM_MODEL": "gpt-4", "IMAGE_MODEL": "stablediffusion"}, "/images/generations"),
}


@pytest.fixture
def servers() -> Iterator[list[FakeOpenAI]]:
    started: list[FakeOpenAI] = []
    yield started
    for server in started:
        server.stop()


def serve(servers: list[FakeOpenAI], mode: str, api_key: str | None = None) -> FakeOpenAI:
    fake = FakeOpenAI(mode, api_key)
    fake.start()
    servers.append(fake)
    return fake


def picture_paths(fake: FakeOpenAI) -> list[str]:
    """The requests that asked for a picture, by route (a chat asked for one with `modalities`)."""
    paths = []
    for request in fake.requests:
        route = request.path.rsplit("/v1", 1)[-1]
        if route in ("/responses", "/images/generations") or "image" in (request.body.get("modalities") or []):
            paths.append("/chat" if route == "/chat/completions" else route)
    return paths


@pytest.mark.parametrize("mode", list(ROWS))
async def test_a_world_and_an_image_loop_through_each_provider(time_env, servers, tmp_path, mode):
    fake = serve(servers, mode)
    extra, route = ROWS[mode]
    settings = Settings(LLM_BASE_URL=fake.url, LLM_API_KEY="sk-row", ATELIER_DATA_DIR=str(tmp_path), **extra)
    provider = make_provider(settings)
    reference = tmp_path / "ref.png"
    reference.write_bytes(png(3))
    store = LocalStore(tmp_path / "store")
    uploaded = local_reference(str(reference))  # as the CLI sends it
    await upload(store, [uploaded])
    world = WorldJob(prompt="A river port of bell makers", characters=2, posts_per_character=1, scoring=False)
    loop = ImageJob(
        prompt="a bell foundry at dawn",
        references=[uploaded[0]],
        options=ImageOptions(background="opaque"),
        max_iterations=2,
        threshold=100,
        technical_weight=0,
    )
    async with running_workers(time_env.client, provider, store):
        made = await time_env.client.execute_workflow(
            WorldWorkflow.run, world, id=f"{mode}-world-{uuid.uuid4().hex[:6]}", task_queue=WORKFLOW_QUEUE
        )
        looped = await time_env.client.execute_workflow(
            ImageRefinementWorkflow.run, loop, id=f"{mode}-image-{uuid.uuid4().hex[:6]}", task_queue=WORKFLOW_QUEUE
        )
    status = made.status
    assert made.state == WorldState.COMPLETED, status.failures
    assert status.images.created == status.images.planned > 0, "every picture"
    assert len(looped.iterations) == 2
    paths = picture_paths(fake)
    if route is None:  # a text-only endpoint: the built-in pictures, no picture request reaches it
        assert paths == [] and looped.provider == "offline"
    else:
        probes = [p for p in paths if p != route]
        assert len(probes) == len(set(probes)), f"auto tried each other route once, then kept {route}: {paths}"
        assert paths[len(probes) :] == [route] * (status.images.created + 2)
    if route in ("/images/generations", "/chat") and mode != "openai":
        first = looped.iterations[0].note or ""
        assert "reference images" in first if route == "/images/generations" else True
        assert "previous image" in (looped.iterations[1].note or ""), "what the route cannot carry is noted"
    log = read_log(settings.call_log_path)
    if mode == "openrouter":  # OpenRouter prices each call in usage.cost: used as reported
        assert all(entry["cost_source"] == "reported" for entry in log)
        expected = sum(OPENROUTER_IMAGE_COST if e["call"] == "generate_image" else OPENROUTER_TEXT_COST for e in log)
        assert status.usage.unpriced_models == [] and status.usage.estimated_cost_usd > 0
        assert sum(e["cost_usd"] for e in log) == pytest.approx(expected)


async def test_text_from_one_server_and_pictures_from_another(time_env, servers, tmp_path):
    """Ollama for text and vision, OpenRouter for pictures: each call lands where it is configured, with its
    own key, and the call log prices each as its endpoint reports."""
    text = serve(servers, "ollama")
    pictures = serve(servers, "openrouter", api_key="sk-or-pictures")
    settings = Settings(
        LLM_BASE_URL=text.url,
        LLM_MODEL="llama3.2",
        EVAL_MODEL="llava",
        IMAGE_BASE_URL=pictures.url,
        IMAGE_API_KEY="sk-or-pictures",
        IMAGE_MODEL="google/gemini-2.5-flash-image",
        ATELIER_DATA_DIR=str(tmp_path),
        ATELIER_PRICES={"llama3.2": Price(), "llava": Price()},  # a local model costs nothing
    )
    loop = ImageJob(prompt="a glass lighthouse", max_iterations=2, threshold=100, technical_weight=0)
    async with running_workers(time_env.client, make_provider(settings), LocalStore(tmp_path / "store")):
        result = await time_env.client.execute_workflow(
            ImageRefinementWorkflow.run, loop, id=f"split-{uuid.uuid4().hex[:6]}", task_queue=WORKFLOW_QUEUE
        )
    assert len(result.iterations) == 2
    assert {r.path for r in text.requests} == {"/v1/chat/completions"}
    assert not picture_paths(text), "no picture was asked of the text server"
    assert {r.body["model"] for r in text.requests} == {"llama3.2", "llava"}
    # a picture server of its own is asked for /images/generations once (refused: 404), then chat from then on
    assert picture_paths(pictures) == ["/images/generations", "/chat", "/chat"]
    log = read_log(settings.call_log_path)
    by_call = {entry["call"]: entry for entry in log}
    assert by_call["generate_image"]["provider"] == pictures.url.split("/")[2]
    assert by_call["evaluate_image"]["provider"] == text.url.split("/")[2]
    assert (
        by_call["generate_image"]["cost_source"] == "reported" and by_call["evaluate_image"]["cost_source"] == "table"
    )
    assert result.usage.models["google/gemini-2.5-flash-image"].cost_usd == pytest.approx(2 * OPENROUTER_IMAGE_COST)


async def test_a_worker_warns_about_an_endpoint_it_cannot_reach_or_that_refuses_its_key(servers):
    strict = serve(servers, "openai", api_key="sk-right")
    closed = f"http://127.0.0.1:{free_port()}/v1"
    settings = Settings(LLM_BASE_URL=strict.url, LLM_API_KEY="sk-wrong", IMAGE_BASE_URL=closed)
    warnings = await endpoint_warnings(settings, from_settings(settings), ["atelier-text", "atelier-images"])
    assert len(warnings) == 2
    assert warnings[0].startswith(f"LLM_API_KEY was refused by {strict.url} (HTTP 401)")
    assert warnings[1].startswith(f"cannot reach IMAGE_BASE_URL={closed}")
    right = Settings(LLM_BASE_URL=strict.url, LLM_API_KEY="sk-right", IMAGE_API="offline")
    assert await endpoint_warnings(right, from_settings(right), ["atelier-text", "atelier-images"]) == []
    assert not any("sk-" in w for w in warnings), "keys never appear in messages"


async def test_a_worker_with_a_models_file_checks_the_files_endpoints_not_the_settings(servers, tmp_path, monkeypatch):
    strict = serve(servers, "openai", api_key="sk-right")
    closed = f"http://127.0.0.1:{free_port()}/v1"
    models = tmp_path / "models.toml"
    models.write_text(f"""
[[models]]
id = "writer"
kinds = ["text", "eval"]
base_url = "{strict.url}"
api_key_env = "ATELIER_TEST_WRITER_KEY"
default = true

[[models]]
id = "painter"
kinds = ["image"]
base_url = "{closed}"
default = true
""")
    catalog = read_catalog(models)
    settings = Settings(LLM_BASE_URL=f"http://127.0.0.1:{free_port()}/v1")  # not what the workers call
    monkeypatch.setenv("ATELIER_TEST_WRITER_KEY", "sk-right")
    warned = await endpoint_warnings(settings, catalog, ["atelier-text"])
    assert warned == [], "the settings' unreachable LLM_BASE_URL is not checked, and the file's key is right"
    catalog = catalog.model_copy(update={"keys": {"writer": SecretStr("sk-wrong")}})
    warnings = await endpoint_warnings(settings, catalog, ["atelier-text", "atelier-images"])
    assert warnings[0].startswith(f"ATELIER_TEST_WRITER_KEY was refused by {strict.url} (HTTP 401)")
    assert warnings[1].startswith(f"cannot reach {models}: model 'painter' base_url={closed}")
    assert len(warnings) == 2


@pytest.mark.slow
@pytest.mark.parametrize("variable", ["LLM_BASE_URL", "IMAGE_BASE_URL", "EVAL_BASE_URL"])
def test_a_malformed_base_url_stops_the_worker_with_one_line(tmp_path, variable):
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = atelier_env(tmp_path, "127.0.0.1:1", **{variable: "ftp://models.example"})
    done = subprocess.run(
        [sys.executable, "-m", "workers"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: invalid configuration: {variable}: must be an http:// or https:// URL with a host "
        "(got 'ftp://models.example')"
    )


def test_unset_endpoints_fall_back_to_the_text_endpoint_and_keys_stay_with_their_host():
    settings = Settings(
        LLM_BASE_URL="http://gpu-box:8000/v1", LLM_API_KEY="sk-text", IMAGE_BASE_URL="https://img.example/v1"
    )
    assert settings.endpoint("eval").url == "http://gpu-box:8000/v1" and settings.endpoint("eval").api_key is not None
    image = settings.endpoint("image")
    assert image.url == "https://img.example/v1" and image.api_key is None, "the text key is not sent elsewhere"
    assert Settings(LLM_BASE_URL="http://localhost:11434/v1").resolved_provider == "openai", "Ollama needs no key"
    assert httpx.URL(image.url).host == "img.example"

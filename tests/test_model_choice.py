"""The model is the run's, at its surfaces: `GET /v1/models` and `atelier models --json` list the same catalog in
OpenAI's list shape; a create (API or CLI) naming an unknown model, or one of another kind, is refused naming
its field or flag before anything starts; a chosen model reaches the run's job; the Studio's forms offer the
catalog (the default marked), "Run again" keeps the run's models, and the run page and Compare name them."""

# ruff: noqa: F811 — the studio fixtures are imported from tests/studio_support.py and taken as arguments
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.api_support import api_settings, http, serving
from tests.conftest import address_of, atelier_env, cli_main, run_cli
from tests.studio_support import browser, page, studio  # noqa: F401

CATALOG = """
[[models]]
id = "writer"
kinds = ["text", "eval"]
base_url = "https://openrouter.ai/api/v1"
api_key_env = "WRITER_KEY"
model = "google/gemini-2.5-flash"
price = { input_per_mtok = 0.3, output_per_mtok = 2.5 }
default = true

[[models]]
id = "painter"
kinds = ["image"]
provider = "offline"
default = true

[[models]]
id = "painter-vivid"
kinds = ["image"]
provider = "offline"
"""
OFFLINE = ["offline", "offline-vivid", "offline-sketch"]
CREATES = {"images": {"prompt": "a lighthouse"}, "worlds": {"prompt": "a harbour town"}, "memes": {"topic": "mondays"}}


def catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(CATALOG)
    return path


async def workflow_ids(client: Client) -> list[str]:
    return [run.id async for run in client.list_workflows()]


async def job_of(client: Client, workflow_id: str) -> dict[str, Any]:
    """The job a run was started with: its first history event's input."""
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        return (await client.data_converter.decode(payloads, [dict]))[0]
    raise AssertionError(f"no history for {workflow_id}")


def options_of(page_html: str, name: str) -> list[tuple[str, str, bool]]:
    """A select's options on a page: (value, words shown, selected)."""
    select = re.search(rf'<select [^>]*name="{re.escape(name)}"[^>]*>(.*?)</select>', page_html, re.S)
    assert select, f"no select {name}"
    found = re.findall(r'<option value="([^"]*)" (selected)?\s*>([^<]*)</option>', select.group(1))
    return [(html.unescape(value), html.unescape(words), bool(chosen)) for value, chosen, words in found]


async def test_the_api_and_the_cli_list_the_catalog_in_openais_list_shape(dev_env, tmp_path):
    address = address_of(dev_env)
    catalog = {"ATELIER_MODELS_FILE": str(catalog_file(tmp_path))}
    async with serving(api_settings(address, tmp_path, **catalog), dev_env.client) as (base, _), http(base) as api:
        listed = (await api.get("/v1/models")).json()
        document = (await api.get("/openapi.json")).json()
    assert listed == {
        "object": "list",
        "data": [
            {"id": "writer", "object": "model", "owned_by": "openrouter", "kinds": ["text", "eval"],
             "price": {"input_per_mtok": 0.3, "output_per_mtok": 2.5, "per_image": 0.0}, "default": ["text", "eval"]},
            {"id": "painter", "object": "model", "owned_by": "atelier", "kinds": ["image"], "price": None,
             "default": ["image"]},
            {"id": "painter-vivid", "object": "model", "owned_by": "atelier", "kinds": ["image"], "price": None,
             "default": []},
        ],
    }  # fmt: skip
    assert document["paths"]["/v1/models"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    printed = cli_main("models", "--json", env=atelier_env(tmp_path, address, **catalog))
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == listed, "the CLI prints what the API answers"

    # no file: with no key, the offline provider's three models, `offline` the default of every kind
    async with serving(api_settings(address, tmp_path), dev_env.client) as (base, _), http(base) as api:
        offline = (await api.get("/v1/models")).json()
    assert [m["id"] for m in offline["data"]] == OFFLINE
    assert [m["default"] for m in offline["data"]] == [["text", "image", "eval"], [], []]
    assert all(m["kinds"] == ["text", "image", "eval"] and m["owned_by"] == "atelier" for m in offline["data"])
    printed = cli_main("models", "--json", env=atelier_env(tmp_path, address))
    assert json.loads(printed.stdout) == offline
    table = cli_main("models", env=atelier_env(tmp_path, address))
    assert table.returncode == 0 and all(name in table.stdout for name in OFFLINE)


@pytest.mark.slow  # a CLI process
async def test_an_unknown_or_wrong_kind_model_is_refused_before_anything_starts(dev_env, tmp_path):
    address = address_of(dev_env)
    env = atelier_env(tmp_path, address, ATELIER_MODELS_FILE=str(catalog_file(tmp_path)))
    settings = api_settings(address, tmp_path, ATELIER_MODELS_FILE=env["ATELIER_MODELS_FILE"])
    async with serving(settings, dev_env.client) as (base, _), http(base) as api:
        for path, body in CREATES.items():
            for models, field, words in (
                ({"image": "nope"}, "body.models.image", "unknown model 'nope'"),
                ({"image": "writer"}, "body.models.image", "model 'writer' does not do image"),
                ({"text": "painter"}, "body.models.text", "model 'painter' does not do text"),
            ):
                refused = await api.post(f"/v1/{path}", json=body | {"models": models})
                assert refused.status_code == 422, (path, refused.text)
                problem = refused.json()
                assert problem["errors"][0]["field"] == field, (path, problem)
                assert words in problem["errors"][0]["message"], problem
        refused = await api.post("/v1/conversations", json={"config": {"models": {"text": "painter"}}})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "body.config.models.text"
    for command, flag, model, words in (
        (["image", "a lighthouse"], "--image-model", "nope", "unknown model 'nope'"),
        (["world", "a harbour town"], "--image-model", "writer", "does not do image"),
        (["meme", "mondays"], "--eval-model", "painter", "does not do eval"),
        (["chat", "--message", "hello"], "--model", "painter-vivid", "does not do text"),
    ):
        refused = cli_main(*command, flag, model, env=env)
        assert refused.returncode == 2, (command, refused.stderr)
        assert refused.stderr.count("\n") == 1 and refused.stderr.startswith(f"error: {flag}: "), refused.stderr
        assert words in refused.stderr
    process = run_cli("image", "a lighthouse", "--image-model", "writer", env=env)
    assert process.returncode == 2 and process.stderr.count("\n") == 1, process.stderr
    assert "--image-model: model 'writer' does not do image" in process.stderr
    assert await workflow_ids(dev_env.client) == [], "nothing was started"

    # a known model of its kind is the run's, from either door (no worker here: the runs wait for one)
    async with serving(settings, dev_env.client) as (base, _), http(base) as api:
        created = await api.post("/v1/images", json={"prompt": "a lighthouse", "models": {"image": "painter-vivid"}})
    assert created.status_code == 202, created.text
    chosen = (await job_of(dev_env.client, created.json()["id"]))["models"]
    assert chosen == {"text": None, "image": "painter-vivid", "eval": None}
    started = run_cli("image", "a lighthouse", "--image-model", "painter-vivid", "--model", "writer", "--detach",
                      env=env)  # fmt: skip
    assert started.returncode == 0, started.stderr
    chosen = (await job_of(dev_env.client, started.stdout.strip()))["models"]
    assert chosen == {"text": "writer", "image": "painter-vivid", "eval": None}


async def test_the_new_run_form_offers_the_catalog_and_run_again_keeps_the_runs_models(studio):
    base, _ = studio
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        form = (await client.get("/new/image")).text
        for kind in ("text", "image", "eval"):
            assert options_of(form, f"models.{kind}") == [
                ("offline", "offline (default)", True), ("offline-vivid", "offline-vivid", False),
                ("offline-sketch", "offline-sketch", False),
            ]  # fmt: skip
        assert '<label for="f-models-image">Image model' in form
        body = {"prompt": "a red kite", "max_iterations": 1, "threshold": 100, "models": {"image": "offline-sketch"}}
        first = (await client.post("/v1/images", json=body)).json()["id"]
        again = (await client.get(f"/new/image?start_from={first}")).text
        assert ("offline-sketch", "offline-sketch", True) in options_of(again, "models.image")
        assert ("offline", "offline (default)", True) in options_of(again, "models.text")
        body["models"] = {"image": "offline-vivid"}
        second = (await client.post("/v1/images", json=body | {"rerun_of": first})).json()["id"]
        run_page = (await client.get(f"/runs/{first}")).text
        assert '<code data-model="image">offline-sketch</code>' in run_page
        assert '<code data-model="text">offline (default)</code>' in run_page
        compare = (await client.get(f"/compare?run={first}&run={second}")).text
        assert 'data-differs="models.image"' in compare and 'data-differs="models.text"' not in compare
        assert '<dd data-model="image">offline-sketch</dd>' in compare
        assert '<dd data-model="image">offline-vivid</dd>' in compare
        chats = (await client.get("/conversations")).text
        offered = re.findall(r'<option value="([^"]+)" (selected)?\s*>', chats.split("data-conversation-model", 1)[1])
        assert offered == [("offline", "selected"), ("offline-vivid", ""), ("offline-sketch", "")]


@pytest.mark.slow
@pytest.mark.browser
async def test_a_run_started_from_the_form_is_made_by_the_model_chosen_there(studio, page, module_dev_env):
    base, _ = studio
    p = page.page
    await p.goto(f"{base}/new/image")
    image_model = p.get_by_label("Image model")
    assert await image_model.input_value() == "offline", "the default is chosen"
    assert await image_model.locator("option").all_inner_texts() == ["offline (default)", *OFFLINE[1:]]
    await p.get_by_label("Prompt").fill("a blue heron in reeds")
    await p.get_by_label("Max iterations").fill("1")
    await image_model.select_option("offline-sketch")
    await p.get_by_role("button", name="Start").click()
    await p.wait_for_url(re.compile(r"/runs/local\.image-"))
    run_id = p.url.rstrip("/").rsplit("/", 1)[-1]
    assert (await job_of(module_dev_env.client, run_id))["models"]["image"] == "offline-sketch"
    assert await p.locator('[data-models] [data-model="image"]').inner_text() == "offline-sketch"

    # a new conversation with the text model chosen beside its button
    await p.goto(f"{base}/conversations")
    await p.get_by_label("Text model").select_option("offline-vivid")
    await p.get_by_role("button", name="New conversation").click()
    await p.wait_for_url(re.compile(r"/conversations/local\.conversation-"))
    conversation = p.url.rstrip("/").rsplit("/", 1)[-1]
    assert (await job_of(module_dev_env.client, conversation))["config"]["models"]["text"] == "offline-vivid"

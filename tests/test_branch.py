"""Branching an image run from one of its iterations (`POST /v1/runs/{id}/branch`, `atelier branch`): the new run
takes the parent's iterations up to N as they are (no generation or evaluation call for them, their pictures the
parent's), makes only its new iterations' calls, counts the reused ones toward its best picture and names its
parent. Real dev server, workers and uvicorn; the model server is the OpenAI-compatible test server, which
counts every call."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from activities.providers import Providers
from kit.api_keys import KeyStore
from kit.run_reading import MEMO_BRANCH
from kit.storage import LocalStore
from models.catalog import from_settings
from models.meme import MemeJob
from models.settings import IMAGE_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE, Settings
from tests.api_support import http, serving
from tests.conftest import address_of, atelier_env, cli_main, eventually, run_cli, running_workers
from tests.fake_openai import FakeOpenAI, Fault
from workflows.meme import MemeWorkflow

pytestmark = pytest.mark.slow  # a dev server, workers, uvicorn and a CLI process

QUEUES = [WORKFLOW_QUEUE, TEXT_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE]  # no scoring worker: scores are the evaluator's
LOOP = {"threshold": 100, "technical_weight": 0}  # never good enough: every iteration runs


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    server.url = server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def api(module_dev_env, fake, tmp_path_factory) -> AsyncIterator[tuple[str, Settings, dict[str, str]]]:
    """The API (keys for `acme` and `zeta`) and workers, both on the test server's models."""
    data = tmp_path_factory.mktemp("branch")
    settings = Settings(
        TEMPORAL_ADDRESS=address_of(module_dev_env),
        ATELIER_DATA_DIR=str(data),
        LLM_BASE_URL=fake.url,
        LLM_API_KEY="test-key",
        LLM_TIMEOUT_S=30,
    )
    keys = KeyStore(settings.api_keys_path)
    tenants = {tenant: keys.add(tenant)[0] for tenant in ("acme", "zeta")}
    providers = Providers(from_settings(settings), settings)
    store = LocalStore(settings.artifact_dir)
    async with (
        running_workers(module_dev_env.client, providers, store, QUEUES, settings),
        serving(settings, module_dev_env.client) as (base, served),
    ):
        yield base, served, tenants


def calls(fake: FakeOpenAI, since: int) -> Counter:
    """The test server's requests since `since`, by what they were for."""
    kinds: Counter = Counter()
    for request in fake.requests[since:]:
        schema = request.body.get("response_format", {}).get("json_schema", {}).get("name")
        if request.path.endswith(("/responses", "/images/generations")):
            kinds["generate"] += 1
        else:
            kinds["evaluate" if schema == "Evaluation" else "refine"] += 1
    return kinds


async def finished(client, run_id: str) -> dict:
    async def done() -> dict | None:
        run = (await client.get(f"/v1/runs/{run_id}")).json()
        return run if run["status"] != "running" else None

    return await eventually(done, 60, f"run {run_id} finished")


async def image_run(client, prompt: str, iterations: int) -> dict:
    """A finished image run's result."""
    created = await client.post("/v1/images", json={"prompt": prompt, "max_iterations": iterations, **LOOP})
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]
    assert (await finished(client, run_id))["status"] == "completed"
    return (await client.get(f"/v1/runs/{run_id}/result")).json()


@pytest.fixture(scope="module")
async def parent(api) -> dict:
    """A finished two-iteration run of `acme`."""
    base, _, tenants = api
    async with http(base, tenants["acme"]) as acme:
        return await image_run(acme, "a paper boat on a pond", 2)


async def test_a_branch_buys_only_its_new_iterations_and_keeps_the_parent_s(api, fake):
    base, settings, tenants = api
    async with http(base, tenants["acme"]) as acme:
        fake.script_scores(40, 60, 50, 30)
        before = len(fake.requests)
        first = await image_run(acme, "a glass lighthouse", 4)
        assert calls(fake, before) == {"generate": 4, "evaluate": 4, "refine": 3}
        parent_id = first["workflow_id"]

        fake.script_scores(10, 20)  # worse than the parent's 60: the best stays a reused picture
        before = len(fake.requests)
        ask = {"from_iteration": 2, "feedback": "make it bluer"}
        created = await acme.post(f"/v1/runs/{parent_id}/branch", json=ask, headers={"Idempotency-Key": "b-1"})
        assert created.status_code == 202, created.text
        child_id = created.json()["id"]
        assert child_id.startswith("acme.image-") and created.headers["location"] == created.json()["urls"]["run"]
        view = await finished(acme, child_id)
        assert view["status"] == "completed" and view["branch_of"] == {"run": parent_id, "from_iteration": 2}

        assert calls(fake, before) == {"generate": 2, "evaluate": 2, "refine": 2}, "iterations 3 and 4 only"
        made = fake.requests[before:]
        refine = json.dumps(made[0].body)
        assert "make it bluer" in refine and json.dumps(first["iterations"][1]["prompt"])[1:-1] in refine
        generation = next(r for r in made if r.path.endswith("/responses"))
        assert generation.body["previous_response_id"] == first["iterations"][1]["response_id"]

        result = (await acme.get(f"/v1/runs/{child_id}/result")).json()
        numbers = [(it["number"], it["reused_from"]) for it in result["iterations"]]
        assert numbers == [(1, parent_id), (2, parent_id), (3, None), (4, None)]
        for reused, original in zip(result["iterations"][:2], first["iterations"][:2], strict=True):
            assert (reused["image"]["key"], reused["image"]["sha256"]) == (
                original["image"]["key"],
                original["image"]["sha256"],
            )
        assert all(it["image"]["key"].startswith(f"runs/{child_id}/") for it in result["iterations"][2:])
        assert (result["best_iteration"], result["final_score"]) == (2, 60), "reused iterations count toward best"
        assert [it["score"] for it in result["iterations"]] == [40, 60, 10, 20]

        again = await acme.post(f"/v1/runs/{parent_id}/branch", json=ask, headers={"Idempotency-Key": "b-1"})
        assert (again.status_code, again.json()["id"], again.json()["status"]) == (202, child_id, "completed")
        other = await acme.post(f"/v1/runs/{child_id}/branch", json=ask, headers={"Idempotency-Key": "b-1"})
        assert other.status_code == 409, "the same key for another parent is another request"

        page = (await acme.get(f"/runs/{child_id}", headers={"Accept": "text/html"})).text
        assert "data-branch-of" in page and "at iteration 2" in page
        assert page.count("data-branch=") == 4 and page.count("data-reused") == 2

        (settings.artifact_dir / first["iterations"][2]["image"]["key"]).unlink()
        gone = await acme.post(f"/v1/runs/{parent_id}/branch", json={"from_iteration": 3})
        assert gone.status_code == 422 and "no longer stored" in gone.text
        assert gone.json()["errors"][0]["field"] == "body.from_iteration"


def field_of(response) -> str:
    assert response.status_code == 422, response.text
    return response.json()["errors"][0]["field"]


async def test_a_branch_of_what_cannot_branch_is_refused_naming_the_field(api, fake, parent, module_dev_env):
    base, _, tenants = api
    parent_id = parent["workflow_id"]
    async with http(base, tenants["acme"]) as acme, http(base, tenants["zeta"]) as zeta:
        ask = {"from_iteration": 1}
        assert (await zeta.post(f"/v1/runs/{parent_id}/branch", json=ask)).status_code == 404
        assert (await acme.post("/v1/runs/acme.image-nope/branch", json=ask)).status_code == 404
        for body, field in (
            ({"from_iteration": 3}, "body.from_iteration"),
            ({"from_iteration": 0}, "body.from_iteration"),
            ({"from_iteration": 2, "max_iterations": 2}, "body.max_iterations"),
            ({"from_iteration": 1, "models": {"image": "nope"}}, "body.models.image"),
            ({"from_iteration": 1, "vary": {"threshold": [1, 2]}}, "body.vary"),
        ):
            assert field_of(await acme.post(f"/v1/runs/{parent_id}/branch", json=body)) == field, body
        refused = await image_run(acme, "[refuse] a burning ship", 2)
        answer = await acme.post(f"/v1/runs/{refused['workflow_id']}/branch", json=ask)
        assert field_of(answer) == "body.from_iteration" and "refused" in answer.text

        meme = await module_dev_env.client.start_workflow(  # a run of another pipeline (on a queue nobody polls)
            MemeWorkflow.run, MemeJob(topic="mondays"), id="acme.meme-unpolled", task_queue="nobody"
        )
        try:
            answer = await acme.post(f"/v1/runs/{meme.id}/branch", json=ask)
            assert field_of(answer) == "path.run_id" and "not an image run" in answer.text
        finally:
            await meme.terminate()


async def test_a_running_run_branches_from_its_finished_iterations(api, fake):
    base, _, tenants = api
    async with http(base, tenants["acme"]) as acme:
        fake.fail("responses", Fault(), Fault(delay=20))  # the parent's second picture takes its time
        created = await acme.post("/v1/images", json={"prompt": "a tin robot", "max_iterations": 3, **LOOP})
        parent_id = created.json()["id"]

        async def one_done() -> bool:
            progress = (await acme.get(f"/v1/runs/{parent_id}")).json()["progress"] or {}
            return len(progress.get("iterations", [])) == 1

        await eventually(one_done, 30, "the parent's first iteration")
        assert field_of(await acme.post(f"/v1/runs/{parent_id}/branch", json={"from_iteration": 2})) == (
            "body.from_iteration"
        )
        branched = await acme.post(f"/v1/runs/{parent_id}/branch", json={"from_iteration": 1, "max_iterations": 2})
        assert branched.status_code == 202, branched.text
        child = await finished(acme, branched.json()["id"])
        result = (await acme.get(f"/v1/runs/{child['id']}/result")).json()
        assert [it["reused_from"] for it in result["iterations"]] == [parent_id, None]
        await acme.post(f"/v1/runs/{parent_id}/cancel")


async def test_the_cli_branches_a_run_and_refuses_a_bad_from_in_one_line(api, fake, parent, module_dev_env, tmp_path):
    _, settings, _ = api
    env = atelier_env(
        tmp_path,
        settings.temporal_address,
        ATELIER_DATA_DIR=str(settings.data_dir),
        LLM_BASE_URL=fake.url,
        LLM_API_KEY="test-key",
    )
    parent_id = parent["workflow_id"]
    for args in (("--from", "3"), ("--from", "0"), ("--from", "1", "--max-iterations", "1")):
        bad = cli_main("branch", parent_id, *args, env=env)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
        assert bad.stderr.startswith("error: --") and "Traceback" not in bad.stderr
    assert cli_main("branch", "acme.image-nope", "--from", "1", env=env).returncode == 2

    out = tmp_path / "out"
    branch = ("branch", parent_id, "--from", "1", "--max-iterations", "2", "--feedback", "warmer", "--id", "cli-branch")
    made = await asyncio.to_thread(run_cli, *branch, "--out", str(out), env=env)  # this loop runs the workers
    assert made.returncode == 0, made.stderr
    printed = json.loads(made.stdout)
    assert printed["workflow_id"] == "cli-branch" and len(printed["score_history"]) == 2
    assert printed["response_ids"][0] == parent["iterations"][0]["response_id"]
    assert all(Path(path).exists() for path in printed["image_history"])
    described = await module_dev_env.client.get_workflow_handle("cli-branch").describe()
    assert await described.memo_value(MEMO_BRANCH) == {"run": parent_id, "from_iteration": 1}

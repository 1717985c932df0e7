"""The HTTP API against a real dev server and workers (offline provider): real uvicorn on loopback,
httpx clients. Each endpoint's contract, idempotent creates, tenants and bad input."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from PIL import Image
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.api_keys import KeyStore
from kit.storage import LocalStore
from models.image import ImageJob
from models.search_attributes import COST, PIPELINE
from models.settings import Settings
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of, eventually, running_workers
from workflows.image_refinement import ImageRefinementWorkflow

pytestmark = pytest.mark.slow  # starts a dev server, workers and uvicorn


@pytest.fixture(scope="module")
async def api(module_dev_env, tmp_path_factory) -> AsyncIterator[tuple[str, Settings]]:
    """One API with keys for tenants `acme` and `zeta`, on one dev server with workers for every queue."""
    data = tmp_path_factory.mktemp("api")
    settings = api_settings(address_of(module_dev_env), data)
    async with (
        running_workers(
            module_dev_env.client, GuardedProvider(OfflineProvider(), None), LocalStore(settings.artifact_dir)
        ),
        serving(settings, module_dev_env.client) as served,
    ):
        yield served


@pytest.fixture(scope="module")
def keys(api) -> dict[str, str]:
    store = KeyStore(api[1].api_keys_path)
    return {tenant: store.add(tenant)[0] for tenant in ("acme", "zeta")}


async def finished(client, run_id: str) -> dict:
    async def done() -> dict | None:
        run = (await client.get(f"/v1/runs/{run_id}")).json()
        return run if run["status"] != "running" else None

    return await eventually(done, 90, f"run {run_id} finished")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


async def test_an_image_run_is_started_followed_and_fetched(api, keys):
    base, _ = api
    async with http(base, keys["acme"]) as acme:
        upload = await acme.post("/v1/uploads", files={"file": ("red.png", png(), "image/png")})
        assert upload.status_code == 201, upload.text
        body = {"prompt": "a red fox", "max_iterations": 2, "threshold": 100, "references": [upload.json()]}
        created = await acme.post("/v1/images", json=body)
        assert created.status_code == 202, created.text
        run = created.json()
        assert run["id"].startswith("acme.image-") and run["status"] == "running"
        assert created.headers["location"] == run["urls"]["run"]
        assert (await acme.get(f"/v1/runs/{run['id']}/result")).status_code in (409, 200)

        status = await finished(acme, run["id"])
        assert status["status"] == "completed" and status["progress"]["scores"]
        result = (await acme.get(f"/v1/runs/{run['id']}/result")).json()
        assert [it["number"] for it in result["iterations"]] == [1, 2]
        picture = await acme.get(result["iterations"][0]["image"]["url"].removeprefix(base))
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
        assert (
            picture.content.startswith(b"\x89PNG")
            and picture.headers["etag"].strip('"') == (result["iterations"][0]["image"]["sha256"])
        )
        again = await acme.get(picture.url, headers={"If-None-Match": picture.headers["etag"]})
        assert again.status_code == 304

        listed = (await acme.get("/v1/runs", params={"pipeline": "image"})).json()
        assert run["id"] in [r["id"] for r in listed["runs"]]
        assert (await acme.post(f"/v1/runs/{run['id']}/feedback", json={"text": "bluer"})).status_code == 409


async def test_the_same_idempotency_key_returns_the_same_run_and_another_body_is_a_conflict(api, keys):
    base, _ = api
    async with http(base, keys["acme"]) as acme:
        body = {"topic": "mondays", "format": "drake"}
        first = await acme.post("/v1/memes", json=body, headers={"Idempotency-Key": "meme-1"})
        second = await acme.post("/v1/memes", json=body, headers={"Idempotency-Key": "meme-1"})
        assert first.status_code == second.status_code == 202
        assert first.json()["id"] == second.json()["id"]
        other = await acme.post("/v1/memes", json={**body, "topic": "fridays"}, headers={"Idempotency-Key": "meme-1"})
        assert other.status_code == 409 and other.headers["content-type"] == "application/problem+json"
        await finished(acme, first.json()["id"])
        after = await acme.post("/v1/memes", json=body, headers={"Idempotency-Key": "meme-1"})
        assert after.json()["id"] == first.json()["id"] and after.json()["status"] == "completed"


async def test_a_tenant_sees_only_its_own_runs_and_artifacts(api, keys):
    base, _ = api
    async with http(base, keys["acme"]) as acme, http(base, keys["zeta"]) as zeta:
        run = (await acme.post("/v1/images", json={"prompt": "a lamp", "max_iterations": 1})).json()
        await finished(acme, run["id"])
        key = (await acme.get(f"/v1/runs/{run['id']}/result")).json()["iterations"][0]["image"]["key"]
        paths = [f"/v1/runs/{run['id']}{tail}" for tail in ("", "/result", "/events", "/deliveries")]
        for path in [*paths, f"/v1/artifacts/{key}"]:
            theirs, unknown = await zeta.get(path), await zeta.get(path.replace(run["id"], "zeta.image-nope"))
            assert theirs.status_code == unknown.status_code == 404, path
        assert (await zeta.post(f"/v1/runs/{run['id']}/cancel")).status_code == 404
        assert run["id"] not in [r["id"] for r in (await zeta.get("/v1/runs")).json()["runs"]]
        upload = (await acme.post("/v1/uploads", files={"file": ("a.png", png(), "image/png")})).json()
        assert (await zeta.get(f"/v1/artifacts/{upload['key']}")).status_code == 404
        assert (await acme.get(f"/v1/artifacts/{upload['key']}")).status_code == 200
        refused = await zeta.post("/v1/images", json={"prompt": "x", "references": [upload]})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.references.0"


async def test_keys_are_required_and_a_revoked_key_is_refused_at_once(api, keys):
    base, settings = api
    async with http(base) as anonymous, http(base, "atl_not-a-key") as wrong:
        for client in (anonymous, wrong):
            answer = await client.get("/v1/runs")
            assert answer.status_code == 401 and answer.headers["content-type"] == "application/problem+json"
    store = KeyStore(settings.api_keys_path)
    key, stored = store.add("acme")
    async with http(base, key) as client:
        assert (await client.get("/v1/runs")).status_code == 200
        store.revoke(stored.id)
        assert (await client.get("/v1/runs")).status_code == 401


async def test_revoking_the_last_key_locks_the_api_it_never_opens_it(module_dev_env, tmp_path):
    settings = api_settings(address_of(module_dev_env), tmp_path)
    store = KeyStore(settings.api_keys_path)
    key, stored = store.add("solo")
    async with serving(settings, module_dev_env.client) as (base, _), http(base, key) as client, http(base) as anyone:
        assert (await client.get("/v1/runs")).status_code == 200
        store.revoke(stored.id)
        assert (await client.get("/v1/runs")).status_code == 401
        assert (await anyone.get("/v1/runs")).status_code == 401, "not the keyless local tenant"
    with pytest.raises(ValueError, match="reserved"):
        store.add("local")


async def test_a_key_s_rate_and_a_tenant_s_runs_at_once_are_capped(api, module_dev_env, tmp_path):
    _, shared = api
    settings = shared.model_copy(update={"api_rate_per_minute": 4, "tenant_max_running": 1})
    key = KeyStore(settings.api_keys_path).add("capped")[0]
    async with serving(settings, module_dev_env.client) as (base, _), http(base, key) as client:
        world = {"prompt": "A long coast", "characters": 6, "posts_per_character": 4, "images": True}
        first = await client.post("/v1/worlds", json=world)
        assert first.status_code == 202
        second = await client.post("/v1/worlds", json=world)
        assert second.status_code == 429 and "at once" in second.json()["detail"], second.text
        await client.post(f"/v1/runs/{first.json()['id']}/cancel")
        limited = [await client.get("/v1/runs") for _ in range(3)][-1]
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


async def test_a_tenant_s_dollars_per_day_are_capped(api, module_dev_env):
    _, shared = api
    settings = shared.model_copy(update={"tenant_max_usd_per_day": 2.0})
    key = KeyStore(settings.api_keys_path).add("spender")[0]
    spent = TypedSearchAttributes([SearchAttributePair(PIPELINE, "image"), SearchAttributePair(COST, 2.5)])
    earlier = await module_dev_env.client.start_workflow(  # a run of today that cost $2.50 (as its workflow says)
        ImageRefinementWorkflow.run,
        ImageJob(prompt="an expensive lamp", max_iterations=1),
        id="spender.image-earlier",
        task_queue="nobody-polls-this",
        search_attributes=spent,
    )
    async with serving(settings, module_dev_env.client) as (base, _), http(base, key) as client:
        refused = await eventually(
            lambda: _status(client.post("/v1/memes", json={"topic": "lamps", "format": "drake"}), 402), 30, "402"
        )
        assert "spent today" in refused.json()["detail"]
    await earlier.terminate()


async def _status(request, status: int):
    answer = await request
    return answer if answer.status_code == status else None


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/images", {"prompt": ""}, "body.prompt"),
        ("/v1/images", {"prompt": "x", "max_iterations": 99}, "body.max_iterations"),
        ("/v1/images", {"prompt": "x", "references": ["/etc/passwd"]}, "body.references.0"),
        ("/v1/images", {"prompt": "x", "references": ["http://127.0.0.1/a.png"]}, "body.references.0"),
        ("/v1/images", {"prompt": "x", "references": ["http://example.com:99999/a.png"]}, "body.references.0"),
        ("/v1/images", {"prompt": "x", "max_cost_usd": -1}, "body.max_cost_usd"),
        ("/v1/images", {"prompt": "x", "options": {"format": "jpeg", "background": "transparent"}}, "body.options"),
        ("/v1/worlds", {"prompt": "x", "characters": 0}, "body.characters"),
        ("/v1/worlds", {"prompt": "x", "budget": {"llm_calls": -1}}, "body.budget.llm_calls"),
        ("/v1/memes", {"topic": "x", "target_score": 2}, "body.target_score"),
        ("/v1/memes", {"topic": "x", "webhook": "not a url"}, "body.webhook"),
        ("/v1/runs/x/feedback", {"text": ""}, "body.text"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(api, keys, path, body, field):
    base, _ = api
    async with http(base, keys["acme"]) as acme:
        before = len((await acme.get("/v1/runs", params={"limit": 100})).json()["runs"])
        answer = await acme.post(path, json=body)
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["errors"][0]["field"] == field, answer.json()
        assert len((await acme.get("/v1/runs", params={"limit": 100})).json()["runs"]) == before, "nothing started"


async def test_bad_query_and_body_shapes_are_problems_too(api, keys):
    base, _ = api
    async with http(base, keys["acme"]) as acme:
        for answer, field in [
            (await acme.get("/v1/runs", params={"limit": 0}), "query.limit"),
            (await acme.get("/v1/runs", params={"state": "SLEEPING"}), "query.state"),
            (await acme.get("/v1/runs", params={"cursor": "%%%"}), "query.cursor"),
            (await acme.post("/v1/images", content=b"{not json", headers={"content-type": "application/json"}), "body"),
            (await acme.post("/v1/uploads", files={"file": ("x.png", b"not a picture", "image/png")}), "body.file"),
        ]:
            assert answer.status_code == 422, (field, answer.text)
            assert answer.json()["errors"][0]["field"].startswith(field), answer.json()


async def test_runs_are_listed_page_by_page_with_cursors(api, keys):
    base, _ = api
    async with http(base, keys["zeta"]) as zeta:
        made = {
            (await zeta.post("/v1/memes", json={"topic": f"day {n}", "format": "drake"})).json()["id"] for n in range(3)
        }
        seen, cursor = [], None
        while True:
            page = (await zeta.get("/v1/runs", params={"limit": 1} | ({"cursor": cursor} if cursor else {}))).json()
            seen += [r["id"] for r in page["runs"]]
            if not (cursor := page["next_cursor"]):
                break
        assert made <= set(seen) and len(seen) == len(set(seen)), "every run once"
        for run_id in made:
            await finished(zeta, run_id)


async def test_cancel_stops_a_running_world(api, keys):
    base, _ = api
    async with http(base, keys["acme"]) as acme:
        world = {"prompt": "A salt-flat railway town", "characters": 4, "posts_per_character": 3, "images": False}
        run = (await acme.post("/v1/worlds", json=world)).json()
        cancelled = await acme.post(f"/v1/runs/{run['id']}/cancel")
        assert cancelled.status_code == 202
        status = await finished(acme, run["id"])
        assert status["status"] == "cancelled"
        assert (await acme.get(f"/v1/runs/{run['id']}/result")).status_code == 409


async def test_openapi_and_docs_are_served(api):
    base, _ = api
    async with http(base) as client:
        spec = (await client.get("/openapi.json")).json()
        assert {"/v1/images", "/v1/worlds", "/v1/memes", "/v1/runs/{run_id}/result"} <= set(spec["paths"])
        assert (await client.get("/docs")).status_code == 200
    await asyncio.sleep(0)

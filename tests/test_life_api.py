"""A world's life through the HTTP API (real uvicorn, the real dev server, in-process workers, the offline
provider): a world made by the world pipeline lives as a run like the others; pause, resume, stop and an injected
event; 404 for an unknown world, 422 naming the field, 409 once the life has ended."""

from __future__ import annotations

from activities.providers.offline import OfflineProvider
from kit.storage import load, make_store
from models.artifacts import ArtifactRef
from models.life import LifeRunState, LifeState, life_id
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of, eventually, running_workers

EVENT = "a storm closes the harbour"


async def test_a_world_lives_through_the_api(module_dev_env, tmp_path):
    settings = api_settings(address_of(module_dev_env), tmp_path)
    store = make_store(settings)
    async with (
        serving(settings, module_dev_env.client) as (base, _),
        http(base) as api,
        running_workers(module_dev_env.client, OfflineProvider(), store, settings=settings),
    ):
        world = {"prompt": "A harbour town of lamplighters", "characters": 4, "posts_per_character": 1}
        made = await api.post("/v1/worlds", json=world | {"images": False, "scoring": False})
        assert made.status_code == 202, made.text
        world_id = made.json()["id"]

        async def finished(run_id: str):
            run = (await api.get(f"/v1/runs/{run_id}")).json()
            return run if run["status"] != "running" else None

        assert (await eventually(lambda: finished(world_id), 60, "the world"))["status"] == "completed"

        bad = await api.post(f"/v1/worlds/{world_id}/life", json={"ticks": 0})
        assert bad.status_code == 422 and "body.ticks" in bad.text
        bad = await api.post(f"/v1/worlds/{world_id}/life", json={"tick": "soon"})
        assert bad.status_code == 422 and "body.tick" in bad.text
        assert (await api.post("/v1/worlds/local.world-none/life", json={})).status_code == 404
        assert (await api.post("/v1/worlds/local.world-none/events", json={"text": EVENT})).status_code == 404

        started = await api.post(f"/v1/worlds/{world_id}/life", json={"ticks": 500, "active_share": 1.0})
        assert started.status_code == 202, started.text
        life = started.json()
        assert life["id"] == life_id(world_id) and life["pipeline"] == "life"
        assert (await api.post(f"/v1/worlds/{world_id}/life", json={"ticks": 500, "active_share": 1.0})).json() == life

        assert (await api.post(f"/v1/worlds/{world_id}/life/pause")).status_code == 202
        assert (await api.post(f"/v1/worlds/{world_id}/life/pause")).status_code == 202  # idempotent

        async def in_state(state: str):
            progress = (await api.get(f"/v1/runs/{life['id']}")).json().get("progress") or {}
            return progress if progress.get("state") == state else None

        held = await eventually(lambda: in_state("paused"), 30, "the life paused")
        assert (await api.post(f"/v1/worlds/{world_id}/events", json={"text": ""})).status_code == 422
        assert (await api.post(f"/v1/worlds/{world_id}/events", json={"text": EVENT})).status_code == 202
        assert (await api.post(f"/v1/worlds/{world_id}/life/resume")).status_code == 202

        async def ticked_on():
            progress = (await api.get(f"/v1/runs/{life['id']}")).json().get("progress") or {}
            return progress if (progress.get("tick") or 0) >= held["tick"] + 2 else None

        await eventually(ticked_on, 30, "the life ticked on")
        assert (await api.post(f"/v1/worlds/{world_id}/life/stop")).status_code == 202
        ended = await eventually(lambda: finished(life["id"]), 30, "the life stopped")
        assert ended["status"] == "completed"
        assert (await api.post(f"/v1/worlds/{world_id}/life/resume")).status_code == 409

        result = (await api.get(f"/v1/runs/{life['id']}/result")).json()
        status = (result.get("result") or result)["status"]
        assert status["state"] == LifeRunState.STOPPED
        state = LifeState.model_validate_json(await load(store, ArtifactRef.model_validate(status["state_ref"])))
        after = [p for p in state.posts.values() if p.tick == held["tick"] + 1]
        assert len(after) == 4 and all(EVENT in p.text for p in after)

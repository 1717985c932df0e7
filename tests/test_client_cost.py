"""A run's prices and per-call reservations are the server's: a create that carries its own `cost` (or a
world's `budget.cost`) is refused naming the field, and `max_cost_usd` is quoted at the server's prices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from models.image import ImageJob, ImageOptions
from models.settings import Settings
from starter.max_cost import cost_limit_for
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of

pytestmark = pytest.mark.slow  # a dev server and uvicorn (no worker: nothing needs to run)

PRICED = {"offline": {"input_per_mtok": 2.0, "output_per_mtok": 8.0, "per_image": 0.04}}
FREE = {"max_usd": 1000, "text_call_usd": 0, "image_call_usd": 0, "text_floor_usd": 0, "image_floor_usd": 0}


@pytest.fixture(scope="module")
async def api(module_dev_env, tmp_path_factory) -> AsyncIterator[tuple[str, Settings]]:
    settings = api_settings(address_of(module_dev_env), tmp_path_factory.mktemp("cost"), ATELIER_PRICES=PRICED)
    async with serving(settings, module_dev_env.client) as served:
        yield served


async def started_input(client: Any, run_id: str) -> dict[str, Any]:
    """The input the run was started with, as its history recorded it."""
    history = await client.get_workflow_handle(run_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    return (await client.data_converter.decode(started.input.payloads, [dict]))[0]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/images", {"prompt": "a fox", "cost": FREE}, "body.cost"),
        ("/v1/images", {"prompt": "a fox", "max_cost_usd": 5, "cost": FREE}, "body.cost"),
        ("/v1/memes", {"topic": "mondays", "cost": FREE}, "body.cost"),
        ("/v1/worlds", {"prompt": "a port town", "budget": {"llm_calls": 10, "cost": FREE}}, "body.budget.cost"),
    ],
)
async def test_a_client_cannot_set_prices_or_reservations(api, path, body, field):
    base, _ = api
    async with http(base) as client:
        before = len((await client.get("/v1/runs", params={"limit": 100})).json()["runs"])
        answer = await client.post(path, json=body)
        assert answer.status_code == 422, answer.text
        problem = answer.json()["errors"][0]
        assert problem["field"] == field and "max_cost_usd" in problem["message"], problem
        assert len((await client.get("/v1/runs", params={"limit": 100})).json()["runs"]) == before, "nothing started"


async def test_the_run_reserves_at_the_servers_prices(api, module_dev_env):
    base, settings = api
    async with http(base) as client:
        answer = await client.post("/v1/images", json={"prompt": "a fox", "max_cost_usd": 5})
        assert answer.status_code == 202, answer.text
        schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    job = ImageJob.model_validate(await started_input(module_dev_env.client, answer.json()["id"]))
    server = cost_limit_for(5, settings, [ImageOptions()], 0, ("image", "text"))
    assert server is not None and job.cost == server
    assert job.cost.text_call_usd > 0.04 and job.cost.image_call_usd > 0.04, "priced, not free"
    assert "cost" not in schemas["ImageRequest"]["properties"], "the schema does not offer what is refused"

"""Event streams hold under abuse: so many open per tenant and per API process (429 with Retry-After beyond,
the slot freed when a stream ends or its client goes), a maximum life after which the client resumes with
Last-Event-ID and loses nothing, and one watcher per run however many streams follow it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

import starter.api.app
from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.api_keys import KeyStore
from kit.storage import ArtifactStore, LocalStore, events_prefix, make_store
from models.settings import Settings
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of, eventually, running_workers

pytestmark = pytest.mark.slow  # a dev server, workers and uvicorn
LONG_WORLD = {  # one post at a time of one character at a time: minutes, so it ends only when a test cancels it
    "prompt": "A long valley",
    "characters": 40,
    "posts_per_character": 20,
    "post_batch_size": 1,
    "max_parallel_characters": 1,
    "images": False,
    "scoring": False,
}


@pytest.fixture(scope="module")
async def settings(module_dev_env, tmp_path_factory) -> AsyncIterator[Settings]:
    """Workers on one dev server; each test serves an API of its own (its limits) over their store."""
    settings = api_settings(address_of(module_dev_env), tmp_path_factory.mktemp("streams"))
    provider = GuardedProvider(OfflineProvider(latency_s=0.15), None)
    async with running_workers(module_dev_env.client, provider, LocalStore(settings.artifact_dir)):
        yield settings


@contextlib.asynccontextmanager
async def long_run(client: httpx.AsyncClient) -> AsyncIterator[str]:
    """A world that runs until the block ends it (cancelled)."""
    created = await client.post("/v1/worlds", json=LONG_WORLD)
    assert created.status_code == 202, created.text
    try:
        yield created.json()["id"]
    finally:
        await client.post(f"/v1/runs/{created.json()['id']}/cancel")


async def held(stack: contextlib.AsyncExitStack, client: httpx.AsyncClient, run_id: str) -> httpx.Response:
    """A stream of the run, opened and held until the stack closes."""
    return await stack.enter_async_context(client.stream("GET", f"/v1/runs/{run_id}/events", timeout=60))


async def refused(client: httpx.AsyncClient, run_id: str) -> httpx.Response:
    """Open a stream and close it at once: its response (body read only when it is a problem)."""
    async with client.stream("GET", f"/v1/runs/{run_id}/events", timeout=60) as response:
        if response.status_code != 200:
            await response.aread()
        return response


def assert_too_many(response: httpx.Response, max_s: float) -> None:
    assert response.status_code == 429, response.status_code
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "too many event streams"
    assert 1 <= int(response.headers["Retry-After"]) <= max_s


async def last_event(stream: httpx.Response) -> str:
    """The type of the last event a held stream sends before it ends."""
    return [line async for line in stream.aiter_lines() if line.startswith("event:")][-1].removeprefix("event: ")


async def read_stream(client: httpx.AsyncClient, run_id: str, last: int | None = None, stop_after: int = 10**6):
    """One stream's events (as their data) until it ends or `stop_after` were read, and its `retry:` hint."""
    headers = {"Last-Event-ID": str(last)} if last is not None else {}
    events: list[dict] = []
    retry: int | None = None
    async with client.stream("GET", f"/v1/runs/{run_id}/events", headers=headers, timeout=60) as stream:
        assert stream.status_code == 200, stream.status_code
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line.removeprefix("data:")))
                if len(events) >= stop_after:
                    break
            elif line.startswith("retry:"):
                retry = int(line.removeprefix("retry:"))
    return events, retry


async def test_a_tenant_gets_so_many_streams_and_a_closed_one_frees_its_slot(settings, module_dev_env, tmp_path: Path):
    keys = SecretStr(f"sqlite:///{tmp_path / 'keys.db'}")  # a database of this test's own keys
    store = KeyStore(settings.model_copy(update={"database_url": keys}))
    alpha, alpha_too, beta = store.add("alpha")[0], store.add("alpha")[0], store.add("beta")[0]
    limits = {"database_url": keys, "streams_per_tenant": 2, "streams_per_process": 50}
    async with (
        serving(settings.model_copy(update=limits), module_dev_env.client) as (base, served),
        http(base, alpha) as a,
        http(base, alpha_too) as a2,
        http(base, beta) as b,
        long_run(a) as mine,
        long_run(b) as theirs,
        contextlib.AsyncExitStack() as first,
    ):
        assert (await held(first, a, mine)).status_code == 200
        async with contextlib.AsyncExitStack() as second:
            assert (await held(second, a, mine)).status_code == 200
            assert_too_many(await refused(a, mine), served.stream_max_s)
            assert_too_many(await refused(a2, mine), served.stream_max_s)  # the tenant's other key: too
            assert (await held(second, b, theirs)).status_code == 200  # another tenant still gets its own
        # the second stream's client went: its slot is free again (as soon as the API sees it go)
        await eventually(lambda: _status(a2, mine, 200), 30, "a freed slot")


async def _status(client: httpx.AsyncClient, run_id: str, wanted: int) -> bool:
    return (await refused(client, run_id)).status_code == wanted


async def test_the_process_serves_so_many_streams_and_healthz_answers_meanwhile(settings, module_dev_env):
    limits = {"streams_per_tenant": 10, "streams_per_process": 2}
    async with (
        serving(settings.model_copy(update=limits), module_dev_env.client) as (base, served),
        http(base) as client,
        long_run(client) as run_id,
        contextlib.AsyncExitStack() as stack,
    ):
        streams = [await held(stack, client, run_id) for _ in range(2)]
        assert [s.status_code for s in streams] == [200, 200]
        assert_too_many(await refused(client, run_id), served.stream_max_s)
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get(f"/v1/runs/{run_id}")).status_code == 200
        await client.post(f"/v1/runs/{run_id}/cancel")
        assert [await last_event(s) for s in streams] == ["run.cancelled"] * 2
        # both streams ended with the run, so two fresh ones (reading it all) are served
        events = await asyncio.gather(*(read_stream(client, run_id) for _ in range(2)))
    assert [e[-1]["type"] for e, _ in events] == ["run.cancelled", "run.cancelled"]
    assert events[0][0] == events[1][0]


async def test_a_stream_ends_at_its_maximum_life_and_resumes_without_loss(settings, module_dev_env):
    async with (
        serving(settings.model_copy(update={"stream_max_s": 1.0}), module_dev_env.client) as (base, _),
        http(base) as client,
    ):
        events: list[dict] = []
        hints: list[int] = []
        async with long_run(client) as run_id:
            for _ in range(30):  # the run goes on for long after a stream's life
                if hints:
                    break
                got, retry = await read_stream(client, run_id, events[-1]["seq"] if events else None)
                events += got
                hints += [retry] if retry is not None else []
        for _ in range(60):  # cancelled: resume until the terminal event
            if events[-1]["type"] == "run.cancelled":
                break
            got, _ = await read_stream(client, run_id, events[-1]["seq"])
            events += got
    assert hints == [1000], "a stream past its life ends with a retry hint"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "nothing lost, nothing twice"
    assert events[-1]["type"] == "run.cancelled"


class ListingSpy:
    """The API's store, noting which task lists each run's events."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.listers: dict[str, set[asyncio.Task]] = defaultdict(set)

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    async def keys(self, prefix: str) -> list[str]:
        self.listers[prefix].add(asyncio.current_task())
        return await self.store.keys(prefix)


async def test_the_streams_of_one_run_share_one_watcher_that_stops_when_they_go(settings, module_dev_env, monkeypatch):
    spies: list[ListingSpy] = []
    monkeypatch.setattr(starter.api.app, "make_store", lambda s: spies.append(ListingSpy(make_store(s))) or spies[-1])
    async with (
        serving(settings, module_dev_env.client) as (base, _),
        http(base) as client,
        long_run(client) as run_id,
    ):
        seen = await asyncio.gather(*(read_stream(client, run_id, stop_after=3) for _ in range(4)))
        watchers = spies[0].listers[events_prefix(run_id)]
        assert len(watchers) == 1, f"{len(watchers)} tasks listed the run's events for 4 streams"
        assert all(events == seen[0][0] for events, _ in seen)
        await eventually(lambda: all(task.done() for task in watchers), 30, "the watcher to stop")

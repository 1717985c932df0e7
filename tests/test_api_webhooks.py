"""Webhooks per the Standard Webhooks specification: signed deliveries of each character and post as a
world makes them, retried on the schedule with one `webhook-id` through a receiver that fails or is down,
listed per run and sent again on request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.api_keys import KeyStore
from kit.storage import LocalStore
from models.settings import EVENTS_QUEUE, Settings
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of, atelier_env, eventually, start_worker
from workers.registry import QUEUES, build_workers

pytestmark = pytest.mark.slow  # a dev server, workers, uvicorn and a receiver

SCHEDULE = [0, 1, 1, 2, 3, 5]  # the specification's schedule, in seconds instead of hours


@dataclass
class Receiver:
    """A webhook receiver on loopback: it verifies every delivery, and fails the first `fail` attempts of each."""

    secret: str = ""
    fail: int = 0
    tries: Counter = field(default_factory=Counter)  # webhook-id → attempts seen
    received: dict[str, dict] = field(default_factory=dict)  # webhook-id → payload, once verified and accepted

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        payload = Webhook(self.secret).verify(body, dict(request.headers))  # raises on a bad signature
        message = request.headers["webhook-id"]
        self.tries[message] += 1
        if self.tries[message] <= self.fail:
            return Response(status_code=500)
        self.received[message] = payload
        return Response(status_code=204)


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver, port: int | None = None) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port or 0))
    app = Starlette(routes=[Route("/hooks", receiver.endpoint, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture(scope="module")
async def api(module_dev_env, tmp_path_factory):
    settings = api_settings(
        address_of(module_dev_env),
        tmp_path_factory.mktemp("hooks"),
        ATELIER_WEBHOOK_SCHEDULE_S=SCHEDULE,
        ATELIER_WEBHOOK_ALLOW_PRIVATE=True,
    )
    provider = GuardedProvider(OfflineProvider(), None)
    workers = build_workers(module_dev_env.client, list(QUEUES), provider, LocalStore(settings.artifact_dir), settings)
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        yield await stack.enter_async_context(serving(settings, module_dev_env.client))


WORLD = {"prompt": "A river town of ferry pilots", "characters": 3, "posts_per_character": 2, "images": False}


async def test_a_world_delivers_each_character_and_post_signed(api):
    base, _settings = api
    async with http(base) as client:
        receiver = Receiver(secret=(await client.get("/v1/webhooks/secret")).json()["secret"])
        async with receiving(receiver) as url:
            run = (await client.post("/v1/worlds", json=WORLD | {"webhook": url})).json()
            await eventually(lambda: _ended(receiver), 90, "the terminal event delivered")
    payloads = sorted(receiver.received.values(), key=lambda p: p["data"]["seq"])
    types = [p["type"] for p in payloads]
    assert types.count("character.created") == 3 and types.count("post.created") == 6
    assert types[-1] == "run.completed" and [p["data"]["seq"] for p in payloads] == list(range(1, len(types) + 1))
    posts = [p["data"] for p in payloads if p["type"] == "post.created"]
    assert all(p["content"] and p["run_id"] == run["id"] for p in posts)
    assert all(len(json.dumps(p)) < 20_000 for p in payloads), "thin payloads"
    assert set(receiver.tries.values()) == {1}


async def test_a_receiver_that_fails_twice_or_is_down_at_first_still_gets_every_event_once(api):
    base, _settings = api
    async with http(base) as client:
        secret = (await client.get("/v1/webhooks/secret")).json()["secret"]
        flaky = Receiver(secret=secret, fail=2)
        async with receiving(flaky) as url:
            run = (await client.post("/v1/memes", json={"topic": "mondays", "format": "drake", "webhook": url})).json()
            await eventually(lambda: _ended(flaky), 90, "every meme event delivered past two failures")
        assert set(flaky.tries.values()) == {3}, "each webhook-id tried three times, the third accepted"

        late = Receiver(secret=secret)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens there yet: the first attempts are refused
        url = f"http://127.0.0.1:{port}/hooks"
        run = (await client.post("/v1/images", json={"prompt": "a barge", "max_iterations": 1, "webhook": url})).json()
        await asyncio.sleep(3)
        async with receiving(late, port):
            await eventually(lambda: _ended(late), 90, "every event delivered once the receiver is up")
        types = [p["type"] for p in sorted(late.received.values(), key=lambda p: p["data"]["seq"])]
        assert types[0] == "run.started" and types[-1] == "run.completed"

        listed = (await client.get(f"/v1/runs/{run['id']}/deliveries")).json()
        assert listed and all(d["status"] == "delivered" for d in listed)
        assert any(a["error"] for d in listed for a in d["attempts"]), "the refused attempts are listed"
        again = await client.post(f"/v1/runs/{run['id']}/deliveries/{listed[0]['id']}/redeliver")
        assert again.status_code == 202
        async with receiving(late, port):
            await eventually(lambda: late.tries[listed[0]["id"]] >= 2 or None, 30, "the delivery sent again")


async def test_webhook_urls_are_guarded_and_keys_see_only_their_endpoints(api):
    base, settings = api
    guarded = settings.model_copy(update={"webhook_allow_private": False})
    from starter.api.webhooks import guard_webhook

    assert await guard_webhook(guarded, "http://127.0.0.1:9/x", "body.webhook") is not None
    assert await guard_webhook(guarded, "ftp://example.com/x", "body.webhook") is not None
    async with http(base) as client:
        made = (await client.post("/v1/webhooks", json={"url": "https://example.com/hooks"})).json()
        assert made["secret"].startswith("whsec_") and made["id"] in [
            e["id"] for e in (await client.get("/v1/webhooks")).json()
        ]
        assert (await client.delete(f"/v1/webhooks/{made['id']}")).status_code == 204
        assert (await client.delete(f"/v1/webhooks/{made['id']}")).status_code == 404
    KeyStore(settings.api_keys_path)  # the API's keys file is where the workers read the secrets


def _ended(receiver: Receiver) -> bool | None:
    """Whether the terminal event and every event before it arrived."""
    seqs = {p["data"]["seq"]: p["type"] for p in receiver.received.values()}
    last = next((seq for seq, kind in seqs.items() if kind in ("run.completed", "run.failed", "run.cancelled")), None)
    return (last is not None and set(seqs) == set(range(1, last + 1))) or None


def events_worker_setup(dev_env, tmp_path: Path, schedule: list[float]) -> tuple[dict[str, str], Settings]:
    """An events worker process's environment and the API's settings: deliveries on `schedule` (seconds), to a
    receiver on loopback."""
    env = atelier_env(
        tmp_path,
        address_of(dev_env),
        ATELIER_WEBHOOK_SCHEDULE_S=json.dumps(schedule),
        ATELIER_WEBHOOK_ALLOW_PRIVATE="1",
    )
    settings = api_settings(
        address_of(dev_env), tmp_path / "data", ATELIER_WEBHOOK_SCHEDULE_S=schedule, ATELIER_WEBHOOK_ALLOW_PRIVATE=True
    )
    return env, settings


async def test_an_events_worker_killed_mid_delivery_loses_no_event(dev_env, tmp_path):
    """The events queue's worker is a process of its own, killed while the receiver holds a delivery; a
    new one takes over: every event still arrives, each under one webhook-id."""
    env, settings = events_worker_setup(dev_env, tmp_path, SCHEDULE)
    store = LocalStore(settings.artifact_dir)
    queues = [q for q in QUEUES if q != EVENTS_QUEUE]
    async with contextlib.AsyncExitStack() as stack:
        for worker in build_workers(dev_env.client, queues, GuardedProvider(OfflineProvider(), None), store, settings):
            await stack.enter_async_context(worker)
        base, _ = await stack.enter_async_context(serving(settings, dev_env.client))
        client = await stack.enter_async_context(http(base))
        receiver = SlowReceiver(secret=(await client.get("/v1/webhooks/secret")).json()["secret"])
        url = await stack.enter_async_context(receiving(receiver))
        first = start_worker(env, tmp_path / "events-1.log", (EVENTS_QUEUE,))
        assert (await client.post("/v1/worlds", json=WORLD | {"webhook": url})).status_code == 202
        await eventually(lambda: receiver.holding or None, 60, "a delivery in the receiver's hands")
        first.kill()  # mid-delivery: the receiver holds a request of this worker's
        first.wait(10)
        await eventually(lambda: receiver.cut or None, 30, "the receiver to see the killed sender's connection go")
        receiver.release.set()
        start_worker(env, tmp_path / "events-2.log", (EVENTS_QUEUE,))
        await eventually(lambda: _ended(receiver), 120, "every event delivered after the kill")
    seqs = sorted(p["data"]["seq"] for p in receiver.received.values())
    assert seqs == list(range(1, len(seqs) + 1)), "nothing lost"
    assert len(receiver.received) == len(receiver.tries), "one webhook-id per event"
    assert receiver.cut >= 1, "a delivery was cut by the kill and sent again under its webhook-id"


@dataclass
class SlowReceiver(Receiver):
    """Holds the deliveries it gets until `release` is set; counts the ones whose sender vanished meanwhile."""

    holding: int = 0
    cut: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: Request) -> Response:
        self.holding += 1
        try:
            try:
                await request.body()  # read first: checking for a disconnect would take the body's message
            except ClientDisconnect:  # the sender vanished before its body came
                self.cut += 1
                return Response(status_code=499)
            while not self.release.is_set():  # held; a sender that vanishes meanwhile is seen as it goes
                if await request.is_disconnected():
                    self.cut += 1
                    return Response(status_code=499)  # nobody reads it: the sender is gone
                await asyncio.sleep(0.05)
            return await super().endpoint(request)
        finally:
            self.holding -= 1

"""A run's deliveries to one webhook go through one workflow (`EndpointDeliveriesWorkflow`), chunk by chunk: 300
events through a receiver that fails some attempts (500, 429 with `Retry-After`) arrive once each, signed; a 410
disables its endpoint and nothing more goes there; a batch signalled twice is taken once; an events worker
SIGKILLed mid-drain loses none and sends none again that its receiver had accepted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest
from standardwebhooks.webhooks import Webhook
from starlette.requests import Request
from starlette.responses import Response

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.api_keys import KeyStore
from kit.storage import LocalStore, deliveries_key
from models.deliveries import DeliveryBatch, DeliveryRecord, EndpointFeed, RecordedDeliveries, endpoint_deliveries_id
from models.events import delivery_id
from models.settings import EVENTS_QUEUE, WORKFLOW_QUEUE
from tests.api_support import api_settings
from tests.conftest import address_of, eventually, start_worker
from tests.test_api_webhooks import events_worker_setup, receiving
from workers.registry import build_workers
from workflows.endpoint_deliveries import CHUNK, EndpointDeliveriesWorkflow

pytestmark = pytest.mark.slow  # a dev server, workers (one a process) and receivers

SCHEDULE = [0, 0.5, 0.5, 1]  # seconds before each attempt
RETRY_AFTER_S = 1.5  # longer than the schedule's wait: the receiver's word wins


@dataclass
class Receiver:
    """Verifies every request (standardwebhooks); answers 500 to the first attempt of seq ≡ 3 (mod 10), 429 with
    `Retry-After` to seq ≡ 7, 204 otherwise (`status` replaces the answer: a gone endpoint)."""

    secret: str
    status: int | None = None
    tries: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # webhook-id → arrivals
    accepted: Counter = field(default_factory=Counter)  # webhook-id → 2xx answers

    async def endpoint(self, request: Request) -> Response:
        payload = Webhook(self.secret).verify(await request.body(), dict(request.headers))  # raises on a bad one
        message = request.headers["webhook-id"]
        self.tries[message].append(time.monotonic())
        first, seq = len(self.tries[message]) == 1, payload["data"]["seq"]
        if self.status is not None:
            return Response(status_code=self.status)
        if first and seq % 10 == 3:
            return Response(status_code=500)
        if first and seq % 10 == 7:
            return Response(status_code=429, headers={"retry-after": str(RETRY_AFTER_S)})
        self.accepted[message] += 1
        return Response(status_code=204)


def batch(run_id: str, seqs: range, last: bool = False) -> DeliveryBatch:
    records = [
        DeliveryRecord(
            delivery_id=delivery_id(run_id, 0, n),
            seq=n,
            type="post.created",
            payload={"type": "post.created", "timestamp": "2026-12-07T00:00:00Z", "data": {"seq": n, "run_id": run_id}},
        )
        for n in seqs
    ]
    return DeliveryBatch(deliveries=records, through_seq=seqs[-1], last=last)


async def signal(client, feed: EndpointFeed, deliveries: DeliveryBatch):
    """As the observer hands a batch over: signal-with-start the webhook's workflow."""
    return await client.start_workflow(
        EndpointDeliveriesWorkflow.run,
        feed,
        id=endpoint_deliveries_id(feed.run_id, 0),
        task_queue=WORKFLOW_QUEUE,
        start_signal="deliver",
        start_signal_args=[deliveries],
    )


async def recorded(store: LocalStore, workflow_id: str) -> dict[str, DeliveryRecord]:
    found = {}
    for key in await store.keys(deliveries_key(workflow_id)):
        found |= {r.delivery_id: r for r in RecordedDeliveries.model_validate_json(await store.read(key)).records}
    return found


async def test_300_events_through_failures_arrive_once_each_and_a_410_disables_its_endpoint(dev_env, tmp_path):
    settings = api_settings(
        address_of(dev_env), tmp_path, ATELIER_WEBHOOK_SCHEDULE_S=SCHEDULE, ATELIER_WEBHOOK_ALLOW_PRIVATE=True
    )
    keys, store = KeyStore(settings), LocalStore(settings.artifact_dir)
    flaky = Receiver(secret=keys.webhook_secret("local"))
    workers = build_workers(
        dev_env.client, [WORKFLOW_QUEUE, EVENTS_QUEUE], GuardedProvider(OfflineProvider(), None), store, settings
    )
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        url = await stack.enter_async_context(receiving(flaky))
        feed = EndpointFeed(run_id="life-1", tenant="local", url=url, schedule_s=SCHEDULE)
        await signal(dev_env.client, feed, batch("life-1", range(1, 101)))
        await signal(dev_env.client, feed, batch("life-1", range(101, 201)))
        await signal(dev_env.client, feed, batch("life-1", range(101, 201)))  # the observer's activity retried
        handle = await signal(dev_env.client, feed, batch("life-1", range(201, 301), last=True))
        assert await asyncio.wait_for(handle.result(), 60) == 300, "every delivery recorded"

        endpoint = keys.add_endpoint("local", url, None)
        gone = Receiver(secret=endpoint.secret, status=410)
        gone_url = await stack.enter_async_context(receiving(gone))
        gone_feed = EndpointFeed(
            run_id="life-2", tenant="local", url=gone_url, endpoint_id=endpoint.id, schedule_s=SCHEDULE
        )
        await signal(dev_env.client, gone_feed, batch("life-2", range(1, 11)))
        await eventually(lambda: endpoint.id not in {e.id for e in keys.endpoints("local")} or None, 30, "disabled")
        later = await signal(dev_env.client, gone_feed, batch("life-2", range(11, 61), last=True))
        assert await asyncio.wait_for(later.result(), 30) == 60

    ids = [delivery_id("life-1", 0, n) for n in range(1, 301)]
    assert sorted(flaky.accepted) == ids and set(flaky.accepted.values()) == {1}, "each webhook-id accepted once"
    retried = [i for n, i in enumerate(ids, start=1) if n % 10 in (3, 7)]
    assert {i for i, arrivals in flaky.tries.items() if len(arrivals) == 2} == set(retried), "one more attempt"
    assert all(len(flaky.tries[i]) == 1 for i in ids if i not in retried)
    throttled = [flaky.tries[i] for n, i in enumerate(ids, start=1) if n % 10 == 7]
    assert min(second - first for first, second in throttled) >= RETRY_AFTER_S - 0.1, "Retry-After honoured"
    records = await recorded(store, endpoint_deliveries_id("life-1", 0))
    assert sorted(records) == ids and {r.status for r in records.values()} == {"delivered"}
    assert all(len(records[i].attempts) == 2 and records[i].attempts[0].status in (500, 429) for i in retried)

    assert len(gone.tries) == 10 and all(len(t) == 1 for t in gone.tries.values()), "nothing after the 410"
    gone_records = await recorded(store, endpoint_deliveries_id("life-2", 0))
    assert len(gone_records) == 60 and {r.status for r in gone_records.values()} == {"disabled"}


@dataclass
class HoldingReceiver(Receiver):
    """Accepts the first `accept` requests, then holds every later one until `release`; counts those whose sender
    vanished while held."""

    accept: int = 100
    holding: int = 0
    cut: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: Request) -> Response:
        await request.body()  # read first (kept for the parent): a disconnect check would take its message
        if sum(self.accepted.values()) >= self.accept and not self.release.is_set():
            self.holding += 1
            try:
                while not self.release.is_set():
                    if await request.is_disconnected():
                        self.cut += 1
                        return Response(status_code=499)  # nobody reads it: the sender is gone
                    await asyncio.sleep(0.05)
            finally:
                self.holding -= 1
        return await super().endpoint(request)


async def test_an_events_worker_killed_mid_drain_loses_none_and_resends_none_accepted(dev_env, tmp_path):
    """The events queue's worker is a process, killed while its chunks are held by the receiver, once the server
    has every answer it had (its heartbeats); a new one resends only the unanswered, under the same ids."""
    env, settings = events_worker_setup(dev_env, tmp_path, SCHEDULE)
    store = LocalStore(settings.artifact_dir)
    receiver = HoldingReceiver(secret=KeyStore(settings).webhook_secret("local"))
    workers = build_workers(dev_env.client, [WORKFLOW_QUEUE], GuardedProvider(OfflineProvider(), None), store, settings)
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        url = await stack.enter_async_context(receiving(receiver))
        first = start_worker(env, tmp_path / "events-1.log", (EVENTS_QUEUE,))
        feed = EndpointFeed(run_id="life-3", tenant="local", url=url, schedule_s=SCHEDULE)
        for start in range(1, 301, 100):
            handle = await signal(dev_env.client, feed, batch("life-3", range(start, start + 100), last=start == 201))
        await eventually(lambda: receiver.holding >= CHUNK or None, 60, "chunks in the receiver's hands")
        await eventually(lambda: _answers_known(handle, receiver), 30, "every answer so far booked or heartbeated")
        first.kill()  # mid-drain: the receiver holds requests of this worker's
        first.wait(10)
        # every held request was the killed worker's: each must be seen gone before the release (one still held
        # then would be accepted from a dead sender, and sent again by the new worker: a receiver's race, not ours)
        await eventually(lambda: (receiver.cut and not receiver.holding) or None, 30, "every held sender seen gone")
        receiver.release.set()
        start_worker(env, tmp_path / "events-2.log", (EVENTS_QUEUE,))
        assert await asyncio.wait_for(handle.result(), 90) == 300
    ids = [delivery_id("life-3", 0, n) for n in range(1, 301)]
    assert sorted(receiver.accepted) == ids, "nothing lost"
    assert set(receiver.accepted.values()) == {1}, "none accepted twice: the new worker resent only the unanswered"
    assert receiver.cut >= 1


async def _answers_known(handle, receiver: HoldingReceiver) -> bool | None:
    """Whether the server knows every answer the receiver gave: booked by the workflow (a chunk that finished) or
    in the heartbeats of the chunks still out."""
    booked = await handle.query(EndpointDeliveriesWorkflow.deliveries)
    answered = {r.delivery_id for r in booked.records if r.attempts}
    for pending in (await handle.describe()).raw_description.pending_activities:
        for payload in pending.heartbeat_details.payloads:
            answered |= {key for key, _ in json.loads(payload.data)}
    return set(receiver.accepted) <= answered or None

"""HTTP API benchmark, on a dev server with in-process workers (offline provider) and the API as its own
`python -m starter serve` process (so its CPU and memory are its own):

(a) create → started: `POST /v1/images` answered, and the run's first workflow task started, p50/p95;
(b) 100 SSE subscribers on one world: every event to every subscriber, the delay from the event's record
    to its arrival (p50/p95), the API process's CPU seconds and peak RSS;
(c) 1,000 webhook deliveries to a loopback receiver that restarts in the middle: throughput, and how many
    webhook-ids arrived (all, once each, or not);
(d) history growth: the events feed's history beside the world's, against Temporal's warning line.

`python -m bench.api [subscribers] [deliveries]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore
from models.deliveries import DeliveryBatch, DeliveryRecord, EndpointFeed, endpoint_deliveries_id
from models.events import Delivery, delivery_id
from models.settings import WORKFLOW_QUEUE, Settings
from tests.conftest import ROOT, address_of, free_port, start_dev_server
from workers.registry import QUEUES, build_workers

HISTORY_WARN_EVENTS = 10_240  # Temporal's default history-count warning (the limit is 51,200)
TICKS = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_and_rss(pid: int) -> tuple[float, int]:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    rss = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM")
    )
    return (int(stat[11]) + int(stat[12])) / TICKS, rss // 1024


async def wait_up(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the API did not come up")


async def create_to_started(api: httpx.AsyncClient, client, n: int = 20) -> str:
    answered, started = [], []
    for _ in range(n):
        sent = time.time()
        run = (await api.post("/v1/images", json={"prompt": "a kite", "max_iterations": 1, "threshold": 0})).json()
        answered.append(time.time() - sent)
        handle = client.get_workflow_handle(run["id"])
        await handle.result()
        history = await handle.fetch_history()
        first = next(e for e in history.events if e.HasField("workflow_task_started_event_attributes"))
        started.append(first.event_time.ToDatetime(UTC).timestamp() - sent)

    def ms(values: list[float]) -> str:
        return f"p50 {pct(values, 0.5) * 1000:.0f} ms, p95 {pct(values, 0.95) * 1000:.0f} ms"

    return f"(a) create → 202: {ms(answered)}; create → first workflow task started: {ms(started)} ({n} runs)"


async def subscribe(base: str, run_id: str, delays: list[float]) -> int:
    count = 0
    async with httpx.AsyncClient(timeout=300) as client, client.stream("GET", f"{base}/v1/runs/{run_id}/events") as s:
        async for line in s.aiter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                delays.append(time.time() - datetime.fromisoformat(event["timestamp"]).timestamp())
                count += 1
                if event["type"] in ("run.completed", "run.failed", "run.cancelled"):
                    break
    return count


async def many_subscribers(base: str, api: httpx.AsyncClient, client, api_pid: int, n: int) -> tuple[str, str]:
    job = {"prompt": "A harbour of lamp makers", "characters": 8, "posts_per_character": 4, "images": True}
    run = (await api.post("/v1/worlds", json=job)).json()
    cpu0, _ = cpu_and_rss(api_pid)
    delays: list[float] = []
    started = time.monotonic()
    counts = await asyncio.gather(*(subscribe(base, run["id"], delays) for _ in range(n)))
    wall = time.monotonic() - started
    cpu1, rss = cpu_and_rss(api_pid)
    world = len((await client.get_workflow_handle(run["id"]).fetch_history()).events)
    feed = len((await client.get_workflow_handle(f"{run['id']}~events").fetch_history()).events)
    every = len(set(counts)) == 1
    line = (
        f"(b) {n} SSE subscribers on one 8x4 world: {counts[0]} events each, every subscriber every event: {every}; "
        f"delay from record to arrival p50 {pct(delays, 0.5) * 1000:.0f} ms, p95 {pct(delays, 0.95) * 1000:.0f} ms; "
        f"API process {cpu1 - cpu0:.1f} CPU s over {wall:.1f} s, peak RSS {rss} MiB"
    )
    growth = (
        f"(d) history: the world {world} events, its events feed {feed} events ({counts[0]} events recorded) — "
        f"{max(world, feed) / HISTORY_WARN_EVENTS:.1%} of Temporal's warning line ({HISTORY_WARN_EVENTS})"
    )
    return line, growth


async def deliveries(client, n: int, per_event: bool = False, outage: bool = True) -> str:
    """(c) through a workflow per webhook, signalled a batch of 100 at a time as the observer does; `per_event`:
    the path from before, a workflow per event, started 100 at a time; `outage`: the receiver is down for 2 s when
    half have arrived (else the steady pace)."""
    got: dict[str, int] = {}

    async def receive(request: Request) -> Response:
        await request.body()
        got[request.headers["webhook-id"]] = got.get(request.headers["webhook-id"], 0) + 1
        return Response(status_code=204)

    port = free_port()

    async def serve_for(stop: asyncio.Event) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        server = uvicorn.Server(
            uvicorn.Config(Starlette(routes=[Route("/", receive, methods=["POST"])]), log_level="error")
        )
        task = asyncio.create_task(server.serve(sockets=[sock]))
        await stop.wait()
        server.should_exit = True
        await task
        sock.close()

    stop = asyncio.Event()
    receiver = asyncio.create_task(serve_for(stop))
    started = time.monotonic()

    prefix = f"bench-{'event' if per_event else 'endpoint'}{'' if outage else '-steady'}"
    schedule = [0, 1, 2, 4, 8, 16]

    def delivery(i: int) -> Delivery:
        payload = {"type": "post.created", "timestamp": datetime.now(UTC).isoformat(), "data": {"seq": i}}
        return Delivery(
            delivery_id=f"{prefix}-{i:05d}",
            run_id=prefix,
            tenant="local",
            url=f"http://127.0.0.1:{port}/",
            payload=payload,
            schedule_s=schedule,
        )

    async def start_all() -> None:
        if not per_event:
            feed = EndpointFeed(run_id=prefix, tenant="local", url=f"http://127.0.0.1:{port}/", schedule_s=schedule)
            for first in range(0, n, 100):
                seqs = range(first + 1, min(n, first + 100) + 1)
                records = [
                    DeliveryRecord(
                        delivery_id=delivery_id(prefix, 0, i), seq=i, type="post.created", payload=delivery(i).payload
                    )
                    for i in seqs
                ]
                signal = DeliveryBatch(deliveries=records, through_seq=seqs[-1], last=seqs[-1] == n)
                await client.start_workflow(
                    "EndpointDeliveriesWorkflow",
                    feed,
                    id=endpoint_deliveries_id(prefix, 0),
                    task_queue=WORKFLOW_QUEUE,
                    start_signal="deliver",
                    start_signal_args=[signal],
                )
            return
        for batch in range(0, n, 100):
            await asyncio.gather(
                *(
                    client.start_workflow(
                        "WebhookDeliveryWorkflow", delivery(i), id=f"{prefix}-{i:05d}", task_queue=WORKFLOW_QUEUE
                    )
                    for i in range(batch, min(n, batch + 100))
                )
            )

    starting = asyncio.create_task(start_all())
    while outage and len(got) < n // 2:  # the receiver restarts when half have arrived: 2 s down
        await asyncio.sleep(0.05)
    if outage:
        stop.set()
        await receiver
        await asyncio.sleep(2)
        stop = asyncio.Event()
        receiver = asyncio.create_task(serve_for(stop))
    while len(got) < n and time.monotonic() - started < 300:
        await asyncio.sleep(0.2)
    wall = time.monotonic() - started
    await starting
    stop.set()
    await receiver
    refused, largest = 0, 0
    async for run in client.list_workflows(f'WorkflowId STARTS_WITH "{prefix}"'):
        history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        largest = max(largest, len(history.events))
        refused += sum(e.HasField("timer_started_event_attributes") for e in history.events) if per_event else 0
    path = f"a workflow per event ({refused} attempts refused, retried)" if per_event else "a workflow per webhook"
    down = "receiver down 2 s when half had arrived" if outage else "the receiver up throughout"
    return (
        f"(c) {n} webhook deliveries through {path}, {down}: "
        f"{len(got)} of {n} webhook-ids arrived, {sum(got.values())} requests, "
        f"in {wall:.1f} s → {len(got) / wall:.0f} deliveries/s; largest history {largest} events"
    )


async def main(subscribers: int, count: int) -> None:
    env = await start_dev_server()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        variables = {"TEMPORAL_ADDRESS": address_of(env), "ATELIER_DATA_DIR": tmp, "ATELIER_API_PORT": str(port)}
        settings = Settings(
            **{k: v for k, v in variables.items()}, ATELIER_WEBHOOK_ALLOW_PRIVATE=True, LLM_API_KEY=None
        )
        workers = build_workers(
            env.client,
            list(QUEUES),
            GuardedProvider(OfflineProvider(), None),
            LocalStore(settings.artifact_dir),
            settings,
        )
        api_env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "ATELIER_"))} | variables
        api_proc = subprocess.Popen([sys.executable, "-m", "starter", "serve"], cwd=ROOT, env=api_env)
        try:
            async with contextlib.AsyncExitStack() as stack:
                for worker in workers:
                    await stack.enter_async_context(worker)
                base = settings.api_url
                await wait_up(base)
                async with httpx.AsyncClient(base_url=base, timeout=60) as api:
                    print(await create_to_started(api, env.client), flush=True)
                    sse, growth = await many_subscribers(base, api, env.client, api_proc.pid, subscribers)
                    print(sse, flush=True)
                    print(await deliveries(env.client, count, per_event=True), flush=True)
                    print(await deliveries(env.client, count), flush=True)
                    print(await deliveries(env.client, count, outage=False), flush=True)
                    print(growth, flush=True)
        finally:
            api_proc.terminate()
            api_proc.wait(10)
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100, int(sys.argv[2]) if len(sys.argv) > 2 else 1000))

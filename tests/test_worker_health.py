"""A worker's /livez and /readyz (workers/health.py): what a Kubernetes probe sees while the worker polls, after
it stops, while its Temporal server is gone and once a server is back on the same address."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from activities.providers import make_provider
from kit.storage import LocalStore
from models.settings import STORAGE_QUEUE, WORKFLOW_QUEUE, Settings
from tests.conftest import (
    address_of,
    atelier_env,
    eventually,
    free_port,
    start_dev_server,
    start_worker,
    wait_for_pollers,
)
from workers.health import WorkerHealth, start_health_server
from workers.registry import build_workers


async def probe(url: str, method: str = "GET") -> tuple[int, dict] | None:
    """The status and JSON body a probe gets, or None when nothing answers."""
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.request(method, url)
    except httpx.HTTPError:
        return None
    return answer.status_code, (answer.json() if answer.content else {})


async def test_ready_while_its_workers_poll_and_not_once_they_stop(module_dev_env, tmp_path):
    settings = Settings(ATELIER_DATA_DIR=str(tmp_path), _env_file=None)
    workers = build_workers(
        module_dev_env.client, [WORKFLOW_QUEUE, STORAGE_QUEUE], make_provider(settings), LocalStore(tmp_path), settings
    )
    health = WorkerHealth(module_dev_env.client.namespace)
    port = free_port()
    server = await start_health_server(health, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    try:
        assert await probe(f"{url}/readyz") == (
            503,
            {"ok": False, "detail": "starting: connecting to Temporal, building the workers"},
        )
        assert await probe(f"{url}/livez") == (200, {"ok": True, "detail": "running"})
        async with contextlib.AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            health.client, health.workers = module_dev_env.client, workers
            ready = await eventually(lambda: ready_answer(f"{url}/readyz"), 30, "the workers to run")
            assert ready == (200, {"ok": True, "detail": f"polling {WORKFLOW_QUEUE}, {STORAGE_QUEUE}"})
            assert (await probe(f"{url}/readyz", "HEAD"))[0] == 200
            assert (await probe(f"{url}/metrics"))[0] == 404
            assert (await probe(f"{url}/readyz", "POST"))[0] == 405
        # the workers have shut down (the context's exit waits for it): the process polls nothing
        status, body = await probe(f"{url}/readyz")
        assert status == 503 and body["detail"] == f"not polling {WORKFLOW_QUEUE}, {STORAGE_QUEUE}"
        health.draining = True
        assert await probe(f"{url}/readyz") == (503, {"ok": False, "detail": "draining: finishing the tasks in flight"})
        assert await probe(f"{url}/livez") == (200, {"ok": True, "detail": "draining"}), "draining is alive"
    finally:
        server.close()
        await server.wait_closed()


async def ready_answer(url: str) -> tuple[int, dict] | None:
    answer = await probe(url)
    return answer if answer and answer[0] == 200 else None


async def test_a_request_that_is_not_http_gets_no_answer_and_does_not_stop_the_server():
    health = WorkerHealth("default")
    port = free_port()
    server = await start_health_server(health, "127.0.0.1", port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x16\x03\x01 not http\r\n\r\n")  # e.g. a TLS hello
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b"", "closed without an answer"
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /livez HTTP/1.1\r\n" + b"X-Filler: 1\r\n" * 200 + b"\r\n")  # more header lines than read
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        assert await probe(f"http://127.0.0.1:{port}/livez") == (200, {"ok": True, "detail": "running"})
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.slow
async def test_worker_process_is_unready_while_its_server_is_gone_and_ready_when_one_is_back(tmp_path):
    temporal_port = free_port()
    first = await start_dev_server(port=temporal_port)
    second = None
    health_port = free_port()
    url = f"http://127.0.0.1:{health_port}/readyz"
    env = atelier_env(tmp_path, address_of(first), ATELIER_HEALTH_PORT=str(health_port))
    worker = start_worker(env, tmp_path / "worker.log", (STORAGE_QUEUE,))
    try:
        ready = await eventually(lambda: ready_answer(url), 90, "the worker process to be ready")
        assert ready[1]["detail"] == f"polling {STORAGE_QUEUE}"
        await first.shutdown()
        first = None

        async def unready() -> tuple[int, dict] | None:
            answer = await probe(url)
            return answer if answer and answer[0] == 503 else None

        gone = await eventually(unready, 20, "the worker to report its server gone")
        assert gone[1]["detail"].startswith("Temporal does not answer"), gone
        assert await probe(f"http://127.0.0.1:{health_port}/livez") == (200, {"ok": True, "detail": "running"})
        assert worker.poll() is None, "the worker waits for its server"

        second = await start_dev_server(port=temporal_port)
        await eventually(lambda: ready_answer(url), 60, "the worker to be ready on the new server")
        await wait_for_pollers(second.client, STORAGE_QUEUE, timeout=30, kind="activity")  # ready = polling
    finally:
        if worker.poll() is None:
            worker.terminate()
        code = worker.wait(timeout=60)
        for server in (first, second):
            if server is not None:
                with contextlib.suppress(Exception):
                    await server.shutdown()
    assert code == 0, (tmp_path / "worker.log").read_text()[-2000:]


@pytest.mark.slow
async def test_a_worker_told_to_stop_while_it_waits_for_temporal_stops_at_once(tmp_path):
    """SIGTERM before the worker has connected (a pod deleted while Temporal is away) ends it, exit 0: the
    handler is there from the start, so as PID 1 it is not dropped and the pod does not wait out its grace."""
    health_port = free_port()
    env = atelier_env(tmp_path, f"127.0.0.1:{free_port()}", ATELIER_HEALTH_PORT=str(health_port))  # no server
    worker = start_worker(env, tmp_path / "worker.log", (STORAGE_QUEUE,))
    live = await eventually(lambda: probe(f"http://127.0.0.1:{health_port}/livez"), 60, "the worker to be live")
    assert live[0] == 200 and (await probe(f"http://127.0.0.1:{health_port}/readyz"))[0] == 503
    worker.terminate()
    code = await asyncio.to_thread(worker.wait, 15)
    log = (tmp_path / "worker.log").read_text()
    assert code == 0 and "stopped before it connected" in log, log[-2000:]

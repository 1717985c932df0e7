"""A worker process's health for an orchestrator's probes (ATELIER_HEALTH_PORT; off by default).

`/livez` answers 200 while the process's event loop runs: a server that is away is no reason to restart a
worker (that would only cancel the calls it is finishing). `/readyz` answers 200 only while every worker in
the process runs (its pollers are live) and Temporal answers this client; 503 while connecting, while the
server is unreachable and while draining on SIGTERM. Both answer JSON: `{"ok": ..., "detail": ...}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

CHECK_TIMEOUT_S = 3.0  # one probe's RPC; probes time out after 5 s (deploy/k8s)
REUSE_S = 1.0  # probes closer together than this share one check
READ_TIMEOUT_S = 5.0
MAX_HEADER_LINES = 100
MAX_LINE = 8192


@dataclass
class WorkerHealth:
    """What the probes report: set by `workers.__main__.serve` as the process connects, runs and drains."""

    namespace: str
    client: Client | None = None
    workers: list[Worker] = field(default_factory=list)
    draining: bool = False
    _checked: tuple[float, bool, str] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def readiness(self) -> tuple[bool, str]:
        if self.draining:
            return False, "draining: finishing the tasks in flight"
        if self.client is None or not self.workers:
            return False, "starting: connecting to Temporal, building the workers"
        stopped = [worker.task_queue for worker in self.workers if not worker.is_running]
        if stopped:
            return False, f"not polling {', '.join(stopped)}"
        async with self._lock:  # one RPC for a burst of probes
            if self._checked is None or time.monotonic() - self._checked[0] > REUSE_S:
                ok, detail = await self._ask_server(self.client)
                self._checked = (time.monotonic(), ok, detail)
            return self._checked[1:]

    async def _ask_server(self, client: Client) -> tuple[bool, str]:
        request = DescribeNamespaceRequest(namespace=self.namespace)
        try:
            await client.workflow_service.describe_namespace(request, timeout=timedelta(seconds=CHECK_TIMEOUT_S))
        except RPCError as exc:
            return False, f"Temporal does not answer: {exc.status.name if exc.status else 'error'}: {exc.message[:160]}"
        except (RuntimeError, TimeoutError) as exc:
            return False, f"Temporal does not answer: {str(exc)[:160]}"
        return True, "polling " + ", ".join(worker.task_queue for worker in self.workers)


async def start_health_server(health: WorkerHealth, host: str, port: int) -> asyncio.Server:
    """Serve `/livez` and `/readyz` on host:port (HTTP/1.1, one request per connection)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path = await read_request(reader)
            status, body = await route(health, method, path)
            writer.write(response(status, body, with_body=method != "HEAD"))
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError):
            pass  # a slow, oversized or broken request gets no answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(answer, host, port, limit=MAX_LINE)


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The method and the path (query dropped) of one request; its headers are read and ignored."""
    line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("not an HTTP request line")
    for _ in range(MAX_HEADER_LINES):
        if (await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)).strip() == b"":
            return parts[0], parts[1].split("?", 1)[0]
    raise ValueError("too many header lines")


async def route(health: WorkerHealth, method: str, path: str) -> tuple[int, dict[str, object]]:
    if path not in ("/livez", "/readyz"):
        return 404, {"ok": False, "detail": "try /livez or /readyz"}
    if method not in ("GET", "HEAD"):
        return 405, {"ok": False, "detail": "GET or HEAD"}
    if path == "/livez":
        return 200, {"ok": True, "detail": "draining" if health.draining else "running"}
    ok, detail = await health.readiness()
    return (200 if ok else 503), {"ok": ok, "detail": detail}


REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def response(status: int, body: dict[str, object], with_body: bool = True) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + (payload if with_body else b"")

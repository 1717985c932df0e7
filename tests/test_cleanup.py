"""A test that fails (an assertion, an exception, pytest-timeout) leaves no process of its behind: every worker,
CLI or other process a test starts through `tests/conftest.py` is stopped when the test ends, however it ends.
Checked by running failing tests in a pytest of their own and looking for their children afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from models.settings import WORKFLOW_QUEUE
from tests.conftest import ROOT, wait_for_pollers
from tests.test_world_out import FinishedWorld

INNER = """
import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import address_of, atelier_env, start_worker

pytestmark = pytest.mark.slow
PIDS = Path(os.environ["INNER_PIDS"])


def note(process):
    with PIDS.open("a") as f:
        f.write(f"{process.pid}\\n")
    return process


async def test_fails_with_its_worker_running(dev_env, tmp_path):
    note(start_worker(atelier_env(tmp_path, address_of(dev_env)), tmp_path / "worker.log"))
    raise AssertionError("fails before its own cleanup")


@pytest.mark.timeout(4)
async def test_times_out_with_its_worker_running(dev_env, tmp_path):
    note(start_worker(atelier_env(tmp_path, address_of(dev_env)), tmp_path / "worker.log"))
    await asyncio.sleep(60)


def test_fails_with_any_process_it_spawned():
    from tests.conftest import spawn

    note(spawn([sys.executable, "-c", "import time; time.sleep(600)"]))
    deaf = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    note(spawn([sys.executable, "-c", deaf]))  # ignores SIGTERM: killed after the grace
    assert False, "fails before its own cleanup"
"""

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
markers =
    slow: slow
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in {"Z", "X"}  # a zombie has exited; init reaps it


async def test_wait_for_pollers_waits_on_a_polling_worker_with_a_deadline(dev_env):
    with pytest.raises(AssertionError, match="a worker to poll atelier-workflows"):
        await wait_for_pollers(dev_env.client, WORKFLOW_QUEUE, timeout=1)
    runner = UnsandboxedWorkflowRunner()
    async with Worker(dev_env.client, task_queue=WORKFLOW_QUEUE, workflows=[FinishedWorld], workflow_runner=runner):
        await asyncio.wait_for(wait_for_pollers(dev_env.client, WORKFLOW_QUEUE), 30)


@pytest.mark.slow
def test_failing_tests_leave_no_process_behind(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "test_inner.py").write_text(textwrap.dedent(INNER))
    (inner / "pytest.ini").write_text(INI)
    pids = tmp_path / "pids"
    env = os.environ | {"PYTHONPATH": str(ROOT), "INNER_PIDS": str(pids)}
    args = ["-p", "tests.conftest", "-p", "no:cacheprovider", "-n", "0", "-q", "-c", str(inner / "pytest.ini")]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "--rootdir", str(inner), str(inner / "test_inner.py")],
        cwd=inner,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    started = [int(line) for line in pids.read_text().split()] if pids.exists() else []
    left = [pid for pid in started if alive(pid)]
    for pid in left:  # do not leave them behind ourselves
        os.kill(pid, signal.SIGKILL)
    assert "3 failed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
    assert not left, f"{len(left)} of {len(started)} processes outlived their failed tests"
    assert len(started) == 4, done.stdout[-3000:]

"""Experiment benchmark: N rows × the three offline models (`models.image` = offline, offline-vivid,
offline-sketch) on the offline provider at zero latency, max_iterations 1, made through `POST /v1/experiments`.

    python -m bench.experiments [--rows 1000] [--timeout 1800]

Prints:
- cells per second: the experiment's cells / the wall time from the POST to its result;
- orchestration overhead per cell, from the histories: a cell's span (the experiment's child-start command →
  the child's completion, as the experiment's history records them) minus its activities' own time (each
  activity's started → completed span in the cell's history); mean, p50, p95. Beside it, the throughput view:
  wall time per cell (1 / cells per second) and mean activity time per cell;
- the largest history (events) of any workflow in the namespace: the experiment's runs (one per
  continue-as-new) and every cell;
- the worker's peak RSS (VmHWM of its process).
A real Temporal dev server, one worker process (`python -m workers`, every queue but scoring: image cells score
on the judge's fidelity, as bench/experiment_page.py) and the API served in-process; nothing leaves loopback,
and the servers and the temporary folder are gone when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench.experiment_page import body, own_port
from bench.studio import RATE, WORKER_QUEUES
from tests.api_support import api_settings, serving
from tests.conftest import address_of, start_dev_server

REPO = Path(__file__).resolve().parent.parent
FETCH_AT_ONCE = 8  # histories read concurrently after the run
SECRETS = ("LLM_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "IMAGE_API_KEY", "EVAL_API_KEY")


def seconds(event: Any) -> float:
    return event.event_time.ToNanoseconds() / 1e9


def activity_time(history: History) -> float:
    """Seconds the history's activities spent executing: each one's started → completed (or failed) span."""
    started: dict[int, float] = {}
    total = 0.0
    for event in history.events:
        if event.HasField("activity_task_started_event_attributes"):
            started[event.activity_task_started_event_attributes.scheduled_event_id] = seconds(event)
        for field in ("activity_task_completed_event_attributes", "activity_task_failed_event_attributes"):
            if event.HasField(field):
                total += seconds(event) - started.pop(getattr(event, field).scheduled_event_id, seconds(event))
    return total


def cell_spans(history: History) -> dict[str, float]:
    """Each child the experiment run started: its workflow id → seconds from the start command to its end."""
    initiated: dict[int, tuple[str, float]] = {}
    spans: dict[str, float] = {}
    for event in history.events:
        if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            attrs = event.start_child_workflow_execution_initiated_event_attributes
            initiated[event.event_id] = (attrs.workflow_id, seconds(event))
        for field in ("child_workflow_execution_completed_event_attributes",
                      "child_workflow_execution_failed_event_attributes"):  # fmt: skip
            if event.HasField(field):
                child, began = initiated[getattr(event, field).initiated_event_id]
                spans[child] = seconds(event) - began
    return spans


async def histories(client: Client) -> list[tuple[str, str, History]]:
    """Every execution in the namespace (each continue-as-new run apart): (type, workflow id, history)."""
    executions = [wf async for wf in client.list_workflows("")]
    limit = asyncio.Semaphore(FETCH_AT_ONCE)

    async def one(wf: Any) -> tuple[str, str, History]:
        async with limit:
            fetched = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        return wf.workflow_type, wf.id, History(events=fetched.events)

    return await asyncio.gather(*(one(wf) for wf in executions))


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def worker_process(address: str, folder: Path):
    """`python -m workers` for every queue but scoring, offline provider, the API's data folder."""
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    env.update(TEMPORAL_ADDRESS=address, ATELIER_DATA_DIR=str(folder), ATELIER_PROVIDER="offline",
               ATELIER_OFFLINE_LATENCY_S="0", PYTHONPATH=str(REPO))  # fmt: skip
    queues = [arg for queue in WORKER_QUEUES for arg in ("--queue", queue)]
    log = (folder / "worker.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "workers", *queues], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        ready = folder / "worker.log"
        for _ in range(600):  # polling within 60 s, or it says why not
            if "worker polling" in ready.read_text() or process.poll() is not None:
                break
            time.sleep(0.1)
        if "worker polling" not in ready.read_text():
            raise RuntimeError(f"the worker did not start: {ready.read_text()[-2000:]}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(args: argparse.Namespace, env: WorkflowEnvironment, folder: Path) -> None:
    settings = api_settings(address_of(env), folder, ATELIER_API_RATE_PER_MINUTE=RATE)
    with worker_process(address_of(env), settings.data_dir) as worker:
        async with serving(settings, env.client) as (base, _), httpx.AsyncClient(base_url=base, timeout=60) as api:
            started = time.perf_counter()
            created = (await api.post("/v1/experiments", json=body(args.rows))).raise_for_status().json()
            try:
                result = await asyncio.wait_for(env.client.get_workflow_handle(created["id"]).result(), args.timeout)
            except BaseException:
                print((settings.data_dir / "worker.log").read_text()[-3000:], flush=True)
                raise
            wall = time.perf_counter() - started
        rss = peak_rss_mb(worker.pid)
    cells = 3 * args.rows
    found = await histories(env.client)
    spans: dict[str, float] = {}
    for kind, _, history in found:
        if kind == "ExperimentWorkflow":
            spans |= cell_spans(history)
    own = {wf_id: activity_time(h) for kind, wf_id, h in found if wf_id in spans}
    overhead = [spans[c] - own[c] for c in spans if c in own]
    kinds = Counter(kind for kind, _, _ in found)
    largest = max(found, key=lambda f: len(f[2].events))
    by_kind = {kind: max(len(h.events) for k, _, h in found if k == kind) for kind in kinds}
    statuses = Counter(cell.get("status") for cell in _outcomes(result))

    print(f"experiment: {args.rows} rows x 3 offline models = {cells} cells, max_parallel {body(1)['max_parallel']}, "
          f"max_iterations 1, zero latency; cells {dict(statuses)}")  # fmt: skip
    print(f"wall {wall:.1f} s -> {cells / wall:.2f} cells/s ({wall / cells * 1000:.0f} ms of wall time per cell)")
    print(
        f"orchestration overhead per cell (cell span - its activities' started->completed time, {len(overhead)} "
        f"cells): mean {statistics.mean(overhead) * 1000:.0f} ms, p50 {quantile(overhead, 0.5) * 1000:.0f} ms, "
        f"p95 {quantile(overhead, 0.95) * 1000:.0f} ms; cell span mean {statistics.mean(spans.values()):.2f} s, "
        f"activity time per cell mean {statistics.mean(own.values()) * 1000:.0f} ms"
    )
    print(
        f"histories: {sum(kinds.values())} executions {dict(kinds)}; largest {len(largest[2].events)} events "
        f"({largest[0]} {largest[1]}); largest per type {by_kind}"
    )
    print(f"worker peak RSS (VmHWM of `python -m workers`, every queue but scoring): {rss:.0f} MB")


def _outcomes(result: Any) -> list[dict]:
    plan = result.get("plan", {}) if isinstance(result, dict) else {}
    return plan.get("outcomes") or plan.get("cells") or []


async def main(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    load = os.getloadavg()
    print(f"Atelier experiment benchmark · {os.cpu_count()} CPUs · load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"at start · {platform.platform()} · Python {platform.python_version()}", flush=True)  # fmt: skip
    env = await start_dev_server(port=own_port(), dev_server_log_level="error")
    failed = False
    try:
        with tempfile.TemporaryDirectory(prefix="atelier-bench-experiments-") as tmp:
            await measure(args, env, Path(tmp))
    except Exception as exc:  # said, and the exit status says so
        failed = True
        print(f"failed: {exc!r}", flush=True)
    finally:
        await env.shutdown()
    load = os.getloadavg()
    print(f"total {time.perf_counter() - began:.0f} s; load at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000, help="the experiment's rows (x 3 models: its cells)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds the experiment may take")
    code = asyncio.run(main(parser.parse_args()))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as workers/__main__.py: no finalization race with Temporal's core threads

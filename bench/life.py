"""A world's life at scale: N characters x T ticks on the offline provider, in one run.

    python -m bench.life [--characters 1000] [--ticks 24] [--latency 0.2] [--timeout 1800]

The world is written into the store as the world pipeline leaves it (each character's profile and one post:
`tests.test_life.make_world`), so the figures measure the life alone. Then, for each model latency (0, then
`--latency` seconds per call, the offline provider's `ATELIER_OFFLINE_LATENCY_S`), the world lives `--ticks` ticks
(the API's defaults: 30 % of the cast active each tick, decisions 10 characters a call, reflections every 4 ticks):
- wall time, and actions per second (one per active character per tick);
- the largest history of any workflow in the namespace (every run of the life, continue-as-new apart), against
  Temporal's 10,240-event limit;
- the worker's peak RSS (VmHWM of its `python -m workers`, every queue but scoring: memories ranked by words);
- with latency: wall time / the critical path, the chain of model calls a tick waits on (its decisions, and on
  reflecting ticks its reflections, each one call deep: the batches run side by side) x the latency.
A real Temporal dev server and a worker process; nothing leaves loopback, and both are gone when it ends. The
exit status is 1 when a life did not complete or a history passed the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench.experiment_page import own_port
from bench.experiments import histories, peak_rss_mb
from bench.studio import WORKER_QUEUES
from kit.storage import LocalStore
from models.life import LifeJob, LifeResult, LifeRunState, life_id
from models.settings import WORKFLOW_QUEUE, Settings
from models.world import Budget
from tests.conftest import address_of, atelier_env, start_dev_server, start_worker, stop_process, wait_for_pollers
from tests.test_life import make_world
from workflows.life import LifeWorkflow

HISTORY_LIMIT = 10_240  # events: Temporal's hard limit on one run's history


def critical_path(job: LifeJob) -> int:
    """Model calls a life waits on one after another: each tick's decisions, and its reflections on reflecting
    ticks (the batches of a step run side by side)."""
    reflecting = job.ticks // job.reflect_every if job.reflect_every else 0
    return job.ticks + reflecting


async def live(server: WorkflowEnvironment, folder: Path, characters: int, ticks: int, latency: float,
               timeout: float) -> dict:  # fmt: skip
    """One world made and lived at `latency`: its figures."""
    client = server.client
    env = atelier_env(folder, address_of(server), ATELIER_PROVIDER="offline",
                      ATELIER_OFFLINE_LATENCY_S=str(latency))  # fmt: skip
    store = LocalStore(Settings(ATELIER_DATA_DIR=env["ATELIER_DATA_DIR"]).artifact_dir)
    world = f"world-bench-{int(latency * 1000)}ms"
    made = time.perf_counter()
    await make_world(store, world, characters)
    made = time.perf_counter() - made
    job = LifeJob(world_id=world, ticks=ticks, budget=Budget(llm_calls=1_000_000))
    worker = start_worker(env, folder / "worker.log", tuple(WORKER_QUEUES))
    try:
        await wait_for_pollers(client, WORKFLOW_QUEUE)
        started = time.perf_counter()
        handle = await client.start_workflow(LifeWorkflow.run, job, id=life_id(world), task_queue=WORKFLOW_QUEUE)
        result: LifeResult = await asyncio.wait_for(handle.result(), timeout)
        wall = time.perf_counter() - started
        rss = peak_rss_mb(worker.pid)
    except BaseException:
        print((folder / "worker.log").read_text()[-3000:], flush=True)
        raise
    finally:
        stop_process(worker, grace=30)
    return {"job": job, "result": result, "wall": wall, "rss": rss, "made": made}


def report(figures: dict, latency: float, zero_wall: float) -> None:
    job, result, wall = figures["job"], figures["result"], figures["wall"]
    st = result.status
    actions = sum(st.actions.values())
    print(f"-- {latency * 1000:.0f} ms per model call: {result.state.value} at tick {st.tick} of {st.ticks} "
          f"(world written in {figures['made']:.1f} s)")  # fmt: skip
    print(f"wall {wall:.1f} s ({wall / job.ticks:.2f} s a tick); {actions} actions -> {actions / wall:.1f} actions/s; "
          f"{st.calls.llm_calls} model calls; {st.posts} posts; {st.reflections} reflections")  # fmt: skip
    print(f"worker peak RSS (VmHWM of `python -m workers`, every queue but scoring): {figures['rss']:.0f} MB")
    if latency:
        chain = critical_path(job)
        bound = chain * latency
        print(f"critical path {chain} calls x {latency * 1000:.0f} ms = {bound:.1f} s -> wall / critical path "
              f"= {wall / bound:.1f}; the latency added {wall - zero_wall:.1f} s to the zero-latency wall "
              f"= {(wall - zero_wall) / bound:.1f} x the critical path")  # fmt: skip


async def largest_history(client: Client) -> bool:
    """Print the largest history of any workflow in the namespace; True when all stay under the limit."""
    found = await histories(client)
    kind, wf_id, history = max(found, key=lambda f: len(f[2].events))
    lives = sorted((len(h.events) for k, _, h in found if k == "LifeWorkflow"), reverse=True)
    print(f"histories: {len(found)} executions; largest {len(history.events)} events ({kind} {wf_id}; limit "
          f"{HISTORY_LIMIT}); the lives' runs: {lives}")  # fmt: skip
    return len(history.events) < HISTORY_LIMIT


async def main(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    load = os.getloadavg()
    print(f"Atelier life benchmark · {args.characters} characters x {args.ticks} ticks · {os.cpu_count()} CPUs · "
          f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start · {platform.platform()} · "
          f"Python {platform.python_version()}", flush=True)  # fmt: skip
    env = await start_dev_server(port=own_port(), dev_server_log_level="error")
    ok, zero_wall = True, 0.0
    try:
        for latency in (0.0, args.latency):
            with tempfile.TemporaryDirectory(prefix="atelier-bench-life-") as tmp:
                figures = await live(env, Path(tmp), args.characters, args.ticks, latency, args.timeout)
            zero_wall = zero_wall or figures["wall"]
            report(figures, latency, zero_wall)
            ok &= figures["result"].state == LifeRunState.COMPLETED
            sys.stdout.flush()
        ok &= await largest_history(env.client)
    except Exception as exc:  # said, and the exit status says so
        ok = False
        print(f"failed: {exc!r}", flush=True)
    finally:
        await env.shutdown()
    load = os.getloadavg()
    print(f"total {time.perf_counter() - began:.0f} s; load at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--characters", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=24)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per model call in the second life")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a life may take")
    code = asyncio.run(main(parser.parse_args()))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as workers/__main__.py: no finalization race with Temporal's core threads

"""The largest world the inputs allow: history size of every workflow, time, and the worker's peak memory.

`python -m bench.world_limits` runs a world at the declared maxima (`WorldJob`: 200 characters × 100
posts, with images) on the offline provider, the worker in its own process, and prints the world's and
the largest character's history (events, bytes) against Temporal's 10,240-event warning line, the wall
time and the worker's peak RSS. `--characters`, `--posts` and `--no-images` run a smaller one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from temporalio.client import Client

from models.settings import WORKFLOW_QUEUE
from models.world import Budget, WorldJob
from tests.conftest import ROOT, start_dev_server
from workflows.world import WorldWorkflow

WARNING_LINE = 10_240
LIMITS = WorldJob.model_fields


def declared_max(field: str) -> int:
    return next(m.le for m in LIMITS[field].metadata if hasattr(m, "le"))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def history_size(client: Client, workflow_id: str) -> tuple[int, int]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return len(history.events), len(history.to_json().encode())


async def main(characters: int, posts: int, images: bool) -> None:
    env = await start_dev_server()
    enough = Budget(llm_calls=characters * (2 + 2 * posts) + 10, image_calls=characters * (1 + posts) + 2)
    job = WorldJob(
        prompt="A continent of rival observatories", characters=characters, posts_per_character=posts,
        images=images, scoring=False, max_parallel_characters=declared_max("max_parallel_characters"),
        budget=enough,  # the default call budget (5,000 images) would stop the largest world early
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        worker_env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "OPENAI_", "ATELIER_"))}
        worker_env |= {
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "ATELIER_DATA_DIR": tmp,
            "ATELIER_CALL_LOG": "false",
            "PYTHONPATH": str(ROOT),
        }
        queues = [
            a
            for q in ("atelier-workflows", "atelier-text", "atelier-images", "atelier-storage")
            for a in ("--queue", q)
        ]
        with open(Path(tmp) / "worker.log", "ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "workers", *queues], cwd=ROOT, env=worker_env, stdout=log, stderr=log
            )
        try:
            started = time.perf_counter()
            result = await env.client.execute_workflow(
                WorldWorkflow.run, job, id="bench-limits", task_queue=WORKFLOW_QUEUE
            )
            wall = time.perf_counter() - started
            rss = peak_rss_mib(worker.pid)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        st = result.status
        world = await history_size(env.client, "bench-limits")
        children = [
            await history_size(env.client, f"bench-limits--{username}") for username in await usernames(env.client)
        ]
    await env.shutdown()
    largest = max(children, default=(0, 0))
    made = f"{st.characters.created} characters, {st.posts.created} posts, {st.images.created} images"
    print(
        f"world {characters} × {posts}, images {'on' if images else 'off'}: {result.state.value}, "
        f"{made} in {wall:.0f} s"
    )
    for name, (events, size) in (("world", world), ("largest character", largest)):
        print(
            f"  {name:<18} {events:>6} events ({events / WARNING_LINE:.0%} of {WARNING_LINE:,}), {size / 2**20:.1f} MiB"
        )
    print(f"  worker peak RSS    {rss:.0f} MiB")
    print("target: every history ≤ 50% of the warning line, worker < 1,024 MiB")


async def usernames(client: Client) -> list[str]:
    history = await client.get_workflow_handle("bench-limits").fetch_history()
    return [
        e.start_child_workflow_execution_initiated_event_attributes.workflow_id.split("--", 1)[1]
        for e in history.events
        if e.HasField("start_child_workflow_execution_initiated_event_attributes")
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--characters", type=int, default=declared_max("characters"))
    parser.add_argument("--posts", type=int, default=declared_max("posts_per_character"))
    parser.add_argument("--no-images", dest="images", action="store_false")
    args = parser.parse_args()
    asyncio.run(main(args.characters, args.posts, args.images))

"""Provider-limits benchmark: a 10 × 5 world with images against a rate-limited endpoint.

The local OpenAI-compatible test server enforces 120 chat requests and 20 images a minute (429 with
retry-after over them), answers a chat in 1 s and an image in 4 s. Two settings, each with one worker
process and with two: `configured`, Atelier told the same limits (ATELIER_TEXT_RPM / ATELIER_IMAGE_RPM);
`learned`, no limits set and the server behaving as OpenAI documents (refused requests count against the
limit, x-ratelimit-* headers on every response), so Atelier learns them. Printed side by side: wall time
÷ the rate-limit bound (successful images ÷ 20/min or chats ÷ 120/min, whichever is larger), the share
of requests refused with 429, and what was lost. `python -m bench.rate_limits [configured|learned]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.workflowservice.v1 import UpdateTaskQueueConfigRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.providers import make_provider
from kit.storage import LocalStore
from models.settings import IMAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE, Settings
from models.world import WorldJob
from tests.conftest import ROOT, start_dev_server
from tests.fake_openai import FakeOpenAI
from workers.registry import QUEUES, build_workers
from workflows.world import WorldWorkflow

TEXT_RPM, IMAGE_RPM = 120, 20
JOB = WorldJob(prompt="A floating archipelago run by cartographer guilds", characters=10, posts_per_character=5)


def limited_server(hosted: bool) -> FakeOpenAI:
    fake = FakeOpenAI()
    fake.rate_limit(text_per_minute=TEXT_RPM, images_per_minute=IMAGE_RPM, hosted=hosted)
    fake.delays = {"chat": 1.0, "responses": 4.0}
    fake.url = fake.start()
    return fake


def environment(fake: FakeOpenAI, address: str, data: Path, learned: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "OPENAI_", "ATELIER_"))}
    configured = {} if learned else {"ATELIER_TEXT_RPM": str(TEXT_RPM), "ATELIER_IMAGE_RPM": str(IMAGE_RPM)}
    return (
        env
        | configured
        | {
            "TEMPORAL_ADDRESS": address,
            "LLM_BASE_URL": fake.url,
            "LLM_API_KEY": "sk-bench",
            "ATELIER_DATA_DIR": str(data),
            "ATELIER_CALL_LOG": "false",
            "PYTHONPATH": str(ROOT),
        }
    )


async def forget_limits(client: Client) -> None:
    """Unset the paid queues' server-side limits (a learned one would carry into the next run)."""
    for queue in (TEXT_QUEUE, IMAGE_QUEUE):
        await client.workflow_service.update_task_queue_config(
            UpdateTaskQueueConfigRequest(
                namespace=client.namespace,
                identity="bench",
                task_queue=queue,
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                update_queue_rate_limit=UpdateTaskQueueConfigRequest.RateLimitUpdate(reason="bench reset"),
            )
        )


async def one_run(env_: WorkflowEnvironment, processes: int, folder: Path, learned: bool) -> dict[str, float]:
    await forget_limits(env_.client)
    folder.mkdir(parents=True, exist_ok=True)
    fake = limited_server(hosted=learned)
    env = environment(fake, env_.client.service_client.config.target_host, folder / f"data-{processes}", learned)
    settings = Settings(_env_file=None, **{k: v for k, v in env.items() if k.startswith(("LLM_", "ATELIER_"))})
    children: list[subprocess.Popen] = []
    async with contextlib.AsyncExitStack() as stack:
        if processes == 1:
            store = LocalStore(folder / f"store-{processes}")
            for worker in build_workers(env_.client, list(QUEUES), make_provider(settings), store, settings):
                await stack.enter_async_context(worker)
        else:
            # workflows in this process; every paid call in the worker processes
            for worker in build_workers(env_.client, [WORKFLOW_QUEUE], make_provider(settings), LocalStore(folder)):
                await stack.enter_async_context(worker)
            for i in range(processes):
                log = open(folder / f"worker-{i}.log", "ab")  # noqa: SIM115 - owned by the process
                command = [sys.executable, "-m", "workers", *[a for q in QUEUES[1:] for a in ("--queue", q)]]
                children.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        try:
            started = time.perf_counter()
            result = await env_.client.execute_workflow(
                WorldWorkflow.run,
                JOB,
                id=f"bench-limits-{'learned' if learned else 'configured'}-{processes}",
                task_queue=WORKFLOW_QUEUE,
            )
            wall = time.perf_counter() - started
        finally:
            for child in children:
                child.terminate()
                child.wait(timeout=60)
    fake.stop()
    images = len([r for r in fake.calls("responses") if not r.limited])
    chats = len([r for r in fake.calls("chat") if not r.limited])
    bound = max(images / IMAGE_RPM, chats / TEXT_RPM) * 60
    st = result.status
    return {
        "wall_s": wall,
        "images": images,
        "chats": chats,
        "bound_s": bound,
        "ratio": wall / bound,
        "refused": len(fake.limited()) / len(fake.requests),
        "refused_images": len([r for r in fake.calls("responses") if r.limited]),
        "refused_chats": len([r for r in fake.calls("chat") if r.limited]),
        "lost": (st.images.planned - st.images.created) + (st.posts.planned - st.posts.created),
        "state": st.state.value,
    }


async def main(modes: list[str]) -> None:
    env = await start_dev_server()
    print(f"world {JOB.characters}×{JOB.posts_per_character} with images; limits {TEXT_RPM} chats/min, "
          f"{IMAGE_RPM} images/min; 1 s per chat, 4 s per image")  # fmt: skip
    print(f"{'limits':>10} {'workers':>8} {'wall s':>8} {'images':>7} {'chats':>6} {'bound s':>8} {'ratio':>6} "
          f"{'429s':>6} {'lost':>5}  state (429s: chats/images)")  # fmt: skip
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for mode in modes:
                for processes in (1, 2):
                    r = await one_run(env, processes, Path(tmp) / mode, learned=mode == "learned")
                    print(f"{mode:>10} {processes:>8} {r['wall_s']:>8.1f} {r['images']:>7} {r['chats']:>6} "
                          f"{r['bound_s']:>8.1f} {r['ratio']:>6.2f} {r['refused']:>6.1%} {r['lost']:>5}  "
                          f"{r['state']} ({r['refused_chats']}/{r['refused_images']})")  # fmt: skip
    finally:
        await env.shutdown()
    print("target: ratio ≤ 1.15, 429s ≤ 5%, nothing lost")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or ["configured", "learned"]))

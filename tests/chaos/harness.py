"""Crash trials: SIGKILL a worker or the Temporal dev server in the middle of a run, then check the
run completed, every planned artifact exists exactly once and no finished model call ran again.

Everything runs on loopback: a dev server on a SQLite file (so it can be killed and restarted on the
same data), a worker process with the offline provider and a simulated model latency, and the
provider call log the worker writes. `python -m tests.chaos` runs the long, seeded matrix.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, WorkflowUpdateStage

from activities.providers.call_log import read_log
from kit.connection import connect
from models.conversation import ConversationStart, Reply
from models.image import ImageJob, ImageOptions
from models.meme import MemeJob
from models.settings import WORKFLOW_QUEUE, Settings
from models.world import WorldJob, WorldManifest, WorldState
from starter.services import dev_server_flags, listening
from tests.conftest import ROOT, TEMPORAL, completed_steps, free_port, spawn
from workflows.conversation import ConversationWorkflow
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.meme import MemeWorkflow
from workflows.world import WorldWorkflow


@dataclass(frozen=True)
class Trial:
    seed: int
    pipeline: str  # world | image | meme | chat
    victim: str  # worker | server


@dataclass
class Outcome:
    trial: Trial
    completed: bool = False
    duplicates: int = 0  # finished calls run again + artifacts written more than once
    lost: int = 0  # planned items missing at the end
    retried_in_flight: int = 0  # calls cut off by the kill and run again (expected)
    recovery_s: float | None = None  # kill → next successful model call
    back_s: float = 0.0  # kill → the victim back (a restarted server listening): a loaded machine's share
    wall_s: float = 0.0
    error: str = ""


class Stack:
    """A dev server on a SQLite file and one worker process, both killable."""

    def __init__(self, folder: Path, latency: float) -> None:
        self.folder = folder
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "OPENAI_", "ATELIER_", "S3_"))}
        self.env.update(
            TEMPORAL_ADDRESS=self.address,
            ATELIER_DATA_DIR=str(folder / "data"),
            ATELIER_OFFLINE_LATENCY_S=str(latency),
            PYTHONPATH=str(ROOT),
        )
        self.server: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.settings = Settings(ATELIER_DATA_DIR=str(folder / "data"))

    def start_server(self) -> None:
        command = [str(TEMPORAL), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(self.port),
                   "--db-filename", str(self.folder / "temporal.db"), "--log-level", "error",
                   *dev_server_flags()]  # fmt: skip
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - owned by the process
        self.server = spawn(command, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while not listening(self.address):
            if time.monotonic() > deadline:
                raise RuntimeError("dev server did not start")
            time.sleep(0.1)

    def start_worker(self) -> None:
        log = open(self.folder / "worker.log", "ab")  # noqa: SIM115 - owned by the process
        self.worker = spawn([sys.executable, "-m", "workers"], cwd=ROOT, env=self.env, stdout=log, stderr=log)

    @staticmethod
    def kill(process: subprocess.Popen | None) -> None:
        if process and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)

    def stop(self) -> None:
        if self.worker and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(self.worker)
        self.kill(self.server)

    @property
    def call_log(self) -> list[dict]:
        return read_log(self.settings.call_log_path)


async def _client(address: str, settings: Settings, timeout: float = 30) -> Client:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await connect(settings.model_copy(update={"temporal_address": address}))
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def _check_world(result, stack: Stack) -> tuple[int, int]:
    """(lost, extra artifacts) for a finished world."""
    root = stack.settings.artifact_dir
    manifest = WorldManifest.model_validate_json((root / result.manifest.key).read_text())
    planned = result.status.posts.planned
    keys = [r.key for c in manifest.characters for r in (c.profile, c.avatar) if r]
    keys += [r.key for c in manifest.characters for p in c.posts for r in (p.post, p.image) if r]
    lost = planned - sum(len(c.posts) for c in manifest.characters)
    lost += sum(1 for key in keys if not (root / key).is_file())
    lost += result.status.characters.planned - len(manifest.characters)
    stray = [p for p in (root / "worlds" / result.world_id).rglob("*") if p.is_file() and p.name.startswith(".tmp-")]
    return lost, (len(keys) - len(set(keys))) + len(stray)


def _check_image(result, stack: Stack, job: ImageJob) -> tuple[int, int]:
    root = stack.settings.artifact_dir
    lost = job.max_iterations - len(result.iterations)
    lost += sum(1 for it in result.iterations if not (root / it.image.key).is_file())
    files = [p for p in (root / "runs").rglob("*") if p.is_file()]
    return lost, len(files) - len(result.iterations)


IMAGE_JOB = ImageJob(
    prompt="a red lighthouse on a blue sea at sunset",
    options=ImageOptions(quality="low"),
    max_iterations=4,
    threshold=100,
)
MEME_JOB = MemeJob(topic="working from home", format="drake", target_score=1.0, max_refinements=2, use_cache=False)
CHAT = ["I keep three beehives on my roof in Lisbon.", "My cat is called Pixel.", "Where are my beehives?"]
LATENCY = {"world": 0.15, "image": 0.4, "meme": 0.3, "chat": 0.2}


async def _start(client: Client, pipeline: str, workflow_id: str) -> None:
    """Start the run; a conversation gets all its messages (accepted updates, ids m1…m3) up front."""
    if pipeline == "world":
        job = WorldJob(prompt="A harbour town of kite builders", characters=3, posts_per_character=4)
        await client.start_workflow(WorldWorkflow.run, job, id=workflow_id, task_queue=WORKFLOW_QUEUE)
    elif pipeline == "image":
        await client.start_workflow(ImageRefinementWorkflow.run, IMAGE_JOB, id=workflow_id, task_queue=WORKFLOW_QUEUE)
    elif pipeline == "meme":
        await client.start_workflow(MemeWorkflow.run, MEME_JOB, id=workflow_id, task_queue=WORKFLOW_QUEUE)
    else:
        handle = await client.start_workflow(
            ConversationWorkflow.run, ConversationStart(), id=workflow_id, task_queue=WORKFLOW_QUEUE
        )
        for number, text in enumerate(CHAT, 1):
            await handle.start_update(
                ConversationWorkflow.ask, text, id=f"m{number}", wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )


async def _finish(client: Client, pipeline: str, workflow_id: str, stack: Stack) -> tuple[bool, int, int]:
    """Wait for the run; (completed, lost, extra artifacts)."""
    if pipeline == "world":
        result = await client.get_workflow_handle_for(WorldWorkflow.run, workflow_id).result()
        return result.state == WorldState.COMPLETED, *_check_world(result, stack)
    if pipeline == "image":
        result = await client.get_workflow_handle_for(ImageRefinementWorkflow.run, workflow_id).result()
        return True, *_check_image(result, stack, IMAGE_JOB)
    if pipeline == "meme":
        meme = await client.get_workflow_handle_for(MemeWorkflow.run, workflow_id).result()
        lost = (MEME_JOB.max_refinements + 1 - len(meme.history)) + (
            not (stack.settings.artifact_dir / meme.image.key).is_file()
        )
        return meme.degraded is None, lost, 0
    handle = client.get_workflow_handle_for(ConversationWorkflow.run, workflow_id)
    replies = [await handle.get_update_handle(f"m{n}", result_type=Reply).result() for n in range(1, len(CHAT) + 1)]
    history = await handle.query(ConversationWorkflow.history)
    assert history is not None
    turns = [t.user for t in history.recent]
    lost = sum(1 for text in CHAT if text not in turns) + sum(1 for n, r in enumerate(replies, 1) if r.turn != n)
    return True, lost, len(turns) - len(set(turns))


async def run_trial(trial: Trial, folder: Path) -> Outcome:
    rng = random.Random(trial.seed)
    outcome = Outcome(trial)
    stack = Stack(folder, LATENCY[trial.pipeline])
    started = time.monotonic()
    try:
        stack.start_server()
        stack.start_worker()
        client = await _client(stack.address, stack.settings)
        workflow_id = f"chaos-{trial.pipeline}-{trial.seed}"
        await _start(client, trial.pipeline, workflow_id)
        await asyncio.sleep(rng.uniform(0.5, 2.5))
        killed_at = time.time()
        before = stack.call_log
        if trial.victim == "worker":
            stack.kill(stack.worker)
            stack.start_worker()
        else:
            stack.kill(stack.server)
            stack.start_server()
        outcome.back_s = round(time.time() - killed_at, 2)
        client = await _client(stack.address, stack.settings)
        finished = _finish(client, trial.pipeline, workflow_id, stack)
        outcome.completed, lost, extra = await asyncio.wait_for(finished, timeout=180)
        outcome.wall_s = time.monotonic() - started

        calls = stack.call_log
        after = sorted(e["at"] for e in calls if e["ok"] and e["at"] > killed_at)
        outcome.recovery_s = round(after[0] - killed_at, 2) if after else None
        ok = Counter((e["workflow_id"], e["activity_id"]) for e in calls if e["ok"])
        settled = await completed_steps(client, {e["workflow_id"] for e in before}, before=killed_at)
        redone = sum(1 for step in settled if ok[step] > 1)
        outcome.retried_in_flight = sum(n - 1 for step, n in ok.items() if n > 1 and step not in settled)
        outcome.lost, outcome.duplicates = lost, redone + extra
    except Exception as exc:  # a trial that fails is reported, not raised
        outcome.error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        stack.stop()
    return outcome


def trials(count: int, seed: int = 7) -> list[Trial]:
    """A seeded mix: worker and server kills during world, image, meme and conversation runs."""
    kinds = [(pipeline, victim) for victim in ("worker", "server") for pipeline in ("world", "image", "meme", "chat")]
    return [Trial(seed + i, *kinds[i % len(kinds)]) for i in range(count)]


def table(outcomes: list[Outcome]) -> str:
    lines = [f"{'trial':<24}{'done':>6}{'dupl.':>7}{'lost':>6}{'in-flight redone':>18}{'recovery s':>12}{'wall s':>8}"]
    for o in outcomes:
        name = f"{o.trial.pipeline}/{o.trial.victim}#{o.trial.seed}"
        recovery = f"{o.recovery_s:.2f}" if o.recovery_s is not None else "-"
        row = f"{name:<24}{'yes' if o.completed else 'NO':>6}{o.duplicates:>7}{o.lost:>6}"
        row += f"{o.retried_in_flight:>18}{recovery:>12}{o.wall_s:>8.1f}"
        lines.append(row + (f"  {o.error}" if o.error else ""))
    done = sum(o.completed for o in outcomes)
    lines.append(
        f"trials {len(outcomes)}, completed {done} ({100 * done // max(1, len(outcomes))}%), "
        f"duplicates {sum(o.duplicates for o in outcomes)}, lost {sum(o.lost for o in outcomes)}, "
        f"in-flight calls redone {sum(o.retried_in_flight for o in outcomes)}"
    )
    for victim in ("worker", "server"):
        times = [o.recovery_s for o in outcomes if o.trial.victim == victim and o.recovery_s is not None]
        if times:
            lines.append(
                f"recovery after a {victim} kill (kill -> next model call): median {statistics.median(times):.2f} s, "
                f"max {max(times):.2f} s over {len(times)} trials"
            )
    return "\n".join(lines)

"""Abuse benchmark (issue #41): the API's memory and a well-behaved tenant's p95 latency while other tenants
attack it, one attack at a time and then all together, before (commit 85d674e, unpacked into /tmp) and after
(this working tree, or a commit given with --after), side by side in one run.

Each variant runs its own code from its own tree (PYTHONPATH), on loopback only: a Temporal dev server, one
worker process (`python -m workers`, offline provider, every queue but scoring) and a keyed
`python -m starter serve` process (ATELIER_TENANT_MAX_RUNNING=1, every other limit at its default), started
afresh for each phase so that its peak RSS (VmHWM) and its rate buckets are the phase's own. Tenants, keys made
with the variant's KeyStore: `good` sends a steady, bounded stream of small requests from a process of its own
(GET /healthz, its run, a small artifact of its run, the runs list; its latencies are recorded); `mallory` asks
for thumbnails and floods creates; `trudy` holds event streams on its one run (started on a queue no worker
polls, so the run never ends and neither would its streams); the bodies carry no key at all. The attacks run
in this process at nice 10, what they attack at nice 0 (on a deployment the attackers are other machines).

Phases, each a window of fixed length, every attack bounded in count and by the window:
  idle        nothing but the good tenant;
  bodies      1 GiB JSON bodies to POST /v1/images without a key, 3 at a time, streamed lazily, each until the
              server answers or the window ends (up to 12; the senders stop past an RSS guard of 4 GiB);
  thumbnails  two uploads (8192² and 4800² PNGs: over and under the after's pixel cap), then rounds of 24
              concurrent `?width=` misses (6 pictures written into the store as a worker would, x 4 widths,
              fresh keys every round, up to 3 rounds) of the same two sizes;
  streams     1,000 event streams on one key, held until the window ends, then closed;
  creates     100 creates at once under a cap of 1: how many were admitted, the most running at once;
  together    all four at once.

    python -m bench.abuse [--only before|after] [--phases idle,bodies,...] [--before 85d674e] [--after REF]
                          [--set NAME=VALUE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.settings import SCORING_QUEUE
from tests.conftest import ROOT, address_of, start_dev_server
from workers.registry import QUEUES

BEFORE = "85d674e"
WINDOWS_S = {"idle": 15, "bodies": 30, "thumbnails": 30, "streams": 30, "creates": 20, "together": 45}
PHASES = list(WINDOWS_S)
LOGS = Path(tempfile.gettempdir()) / "atelier-abuse-logs"  # the last run's, kept
GOAL_RATIO, GOAL_RSS_MB = 2.0, 512

BODY_BYTES = 1 << 30
BODIES_AT_ONCE, BODIES_MAX = 3, 12
BODY_START = b'{"prompt": "x", '  # then whitespace: valid JSON so far, nothing to refuse until the end
FILLER = memoryview(b" " * (1 << 20))
# The attacking clients run in this process at a lower CPU priority than what they attack (the API, its
# Temporal server and worker, the good tenant): on a real deployment they are other machines, here they share
# two cores with it, and the API's own cost is what is measured.
ATTACKERS_NICE = 10
RSS_GUARD_MB = 4096  # the body senders stop past this (the machine's sake, not the API's)

SIDES = (8192, 4800)  # 67.1 MP (over the after's upload and thumbnail cap) and 23.0 MP (just under it)
PER_SIDE = 3  # pictures of each size per round: 6 pictures x 4 widths = 24 misses
THUMB_ROUNDS = 3
WIDTHS = (96, 192, 384, 768)
PICTURES_RUN = "mallory.image-pictures"

STREAMS, STREAM_CONNECTS_AT_ONCE = 1000, 100
HELD_RUN = "trudy.image-held"
CREATES = 100
TOP_LEVEL = '("ImageRefinementWorkflow", "WorldWorkflow", "MemeWorkflow")'
MALLORY_RUNS = f'WorkflowId STARTS_WITH "mallory." AND WorkflowType IN {TOP_LEVEL}'
RUNNING = ' AND ExecutionStatus = "Running"'

GOOD_EVERY_S = 0.15  # a request sent every so often (3 in 4 charged): 5 charged a second, under 600 a minute
GOOD_MAX_IN_FLIGHT = 100  # past this, a request due is counted as not sent
GOOD_TIMEOUT_S = 20.0
OFFLINE_LATENCY_S = 0.2  # each offline model call: an admitted create runs a few seconds
WORKER_QUEUES = [q for q in QUEUES if q != SCORING_QUEUE]  # no torch: image runs score on fidelity alone
KEYS_SNIPPET = (  # the keys file's module: activities/api_keys.py before #42, kit/api_keys.py after
    "import importlib, json\nfrom models.settings import Settings\n"
    "try:\n    k = importlib.import_module('activities.api_keys')\n"
    "except ModuleNotFoundError:\n    k = importlib.import_module('kit.api_keys')\n"
    "s = k.KeyStore(Settings().api_keys_path)\n"
    "print(json.dumps({'code': k.__file__, 'keys': {t: s.add(t)[0] for t in ('good', 'mallory', 'trudy')}}))"
)


# ---------------------------------------------------------------------------------------------- variants


@dataclass
class Variant:
    name: str
    tree: Path
    data: Path
    env: dict[str, str] = field(default_factory=dict)
    client: Client | None = None
    keys: dict[str, str] = field(default_factory=dict)
    good_run: str = ""
    good_artifact: str = ""
    code: str = ""
    worker: subprocess.Popen | None = None


GOOD_KINDS = ("healthz", "run", "artifact", "list")  # the good tenant's requests, in its order


@dataclass
class Outcome:
    latencies_ms: list[float]
    kinds: list[int]
    offsets_s: list[float]  # when each request was sent, after the window began
    good: Counter
    peak_rss_mb: float
    notes: Counter


def unpacked(commit: str) -> Path:
    """The commit's files, unpacked once into /tmp (`git archive`: nothing in this repository changes)."""
    tree = Path(tempfile.gettempdir()) / f"atelier-bench-{commit}"
    if not (tree / "starter").is_dir():
        part = tree.with_name(tree.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(part)], input=archive.stdout, check=True)
        part.rename(tree)
    return tree


def variant_env(tree: Path, data: Path, address: str, settings: list[str]) -> dict[str, str]:
    outside = ("LLM_", "OPENAI_", "ATELIER_", "TEMPORAL_", "IMAGE_", "EVAL_", "S3_")
    return (
        {k: v for k, v in os.environ.items() if not k.startswith(outside)}
        | {
            "PYTHONPATH": str(tree),
            "TEMPORAL_ADDRESS": address,
            "ATELIER_DATA_DIR": str(data),
            "ATELIER_PROVIDER": "offline",
            "ATELIER_OFFLINE_LATENCY_S": str(OFFLINE_LATENCY_S),
            "ATELIER_CALL_LOG": "false",
            "ATELIER_TENANT_MAX_RUNNING": "1",
        }
        | dict(setting.split("=", 1) for setting in settings)
    )


def served_priority() -> None:
    """A process under test runs at the ordinary priority, above the attacking clients (`ATTACKERS_NICE`)."""
    os.setpriority(os.PRIO_PROCESS, 0, 0)


def spawn(v: Variant, args: list[str], log: str, **env: str) -> subprocess.Popen:
    with open(v.data / log, "ab") as out:  # the child holds its own copy
        return subprocess.Popen(
            [sys.executable, *args], cwd=v.tree, env=v.env | env, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=served_priority,
        )  # fmt: skip


def free_port() -> int:
    """A loopback port the kernel picks (the tests' port ranges belong to the engineers' test runs)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def wait_up(base: str, process: subprocess.Popen, log: Path) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(600):
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the API exited ({process.returncode}) before it came up:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the API did not come up in 60 s")


@contextlib.asynccontextmanager
async def serving(v: Variant, log: str):
    """A fresh `python -m starter serve` of the variant (its output in `log`): its base URL and process."""
    port = free_port()
    process = spawn(v, ["-m", "starter", "serve"], log, ATELIER_API_PORT=str(port))
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_up(base, process, v.data / log)
        yield base, process
    finally:
        stop(process)


def memory_mb(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def picture(side: int) -> bytes:
    """A side x side RGB PNG of smooth gradients: small on disk, side² x 3 bytes once decoded."""
    ramp = Image.linear_gradient("L").resize((side, side))
    rings = Image.radial_gradient("L").resize((side, side))
    out = io.BytesIO()
    Image.merge("RGB", (ramp, rings, ramp.transpose(Image.Transpose.ROTATE_90))).save(out, "PNG")
    return out.getvalue()


def picture_key(side: int, n: int) -> str:
    return f"runs/{PICTURES_RUN}/{side}-{n}.png"


async def set_up(v: Variant, pictures: dict[int, bytes]) -> None:
    """Keys, the worker, the good tenant's finished run and its small artifact, trudy's held run, mallory's
    pictures in the store."""
    made = subprocess.run(
        [sys.executable, "-c", KEYS_SNIPPET], cwd=v.tree, env=v.env, check=True, capture_output=True, text=True
    )
    answer = json.loads(made.stdout)
    v.keys, v.code = answer["keys"], str(Path(answer["code"]).parent.parent)
    if Path(v.code).resolve() != v.tree.resolve():
        raise RuntimeError(f"{v.name} imported its code from {v.code}, not {v.tree}")
    assert v.client is not None
    v.worker = spawn(v, ["-m", "workers", *[a for q in WORKER_QUEUES for a in ("--queue", q)]], "worker.log")
    async with serving(v, "api-setup.log") as (base, _), httpx.AsyncClient(base_url=base, timeout=60) as api:
        job = {"prompt": "a quiet harbour at dawn", "max_iterations": 1, "threshold": 0, "technical_weight": 0}
        created = await api.post("/v1/images", json=job, headers={"Authorization": f"Bearer {v.keys['good']}"})
        v.good_run = created.raise_for_status().json()["id"]
        await asyncio.wait_for(v.client.get_workflow_handle(v.good_run).result(), 180)
    files = [p for p in (v.data / "artifacts" / "runs" / v.good_run).rglob("*") if p.is_file()]
    if not files:
        raise RuntimeError(f"the good run {v.good_run} stored no artifact")
    v.good_artifact = str(min(files, key=lambda p: p.stat().st_size).relative_to(v.data / "artifacts"))
    await v.client.start_workflow(
        "ImageRefinementWorkflow", {"prompt": "held open"}, id=HELD_RUN, task_queue="bench-nobody-polls"
    )
    for side, data in pictures.items():  # as the local store keeps an artifact: a file at its key
        for n in range(PER_SIDE * THUMB_ROUNDS):
            path = v.data / "artifacts" / picture_key(side, n)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


async def release(v: Variant) -> None:
    """Terminate mallory's running runs, so the next phase's creates start from none."""
    assert v.client is not None
    handles = [v.client.get_workflow_handle(r.id) async for r in v.client.list_workflows(MALLORY_RUNS + RUNNING)]
    for handle in handles:
        with contextlib.suppress(Exception):
            await handle.terminate("bench: phase over")


# ---------------------------------------------------------------------------------------------- the attacks


@dataclass
class Attack:
    v: Variant
    base: str
    pid: int
    deadline: float
    notes: Counter = field(default_factory=Counter)

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def left(self) -> float:
        return max(0.05, self.deadline - time.monotonic())

    def over(self) -> bool:
        return time.monotonic() >= self.deadline

    def auth(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.v.keys[tenant]}"}


def status_of(line: bytes) -> str:
    parts = line.split()
    return parts[1].decode() if len(parts) > 1 and line.startswith(b"HTTP/") else "closed"


async def big_body(a: Attack) -> tuple[str, int]:
    """One 1 GiB JSON body without a key, written as fast as the server reads it: the answer's status (or
    why there was none) and the bytes written."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", a.port), a.left())
    except (OSError, TimeoutError):
        return "no connection", 0
    head = (
        f"POST /v1/images HTTP/1.1\r\nHost: 127.0.0.1:{a.port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {BODY_BYTES}\r\n\r\n"
    ).encode()
    answer = asyncio.ensure_future(reader.readline())
    sent, broke = len(BODY_START), False
    try:
        try:
            writer.write(head + BODY_START)
            while sent < BODY_BYTES and not answer.done() and not a.over():
                if sent % (64 << 20) < len(FILLER) and memory_mb(a.pid, "VmRSS") > RSS_GUARD_MB:
                    return "stopped at the RSS guard", sent
                chunk = FILLER[: BODY_BYTES - sent]
                writer.write(chunk)
                sent += len(chunk)
                await asyncio.wait_for(writer.drain(), a.left())
        except (OSError, TimeoutError):
            broke = True  # the server answered and closed while we wrote, or the window ended
        try:
            line = await asyncio.wait_for(asyncio.shield(answer), max(a.left(), 2.0 if broke else 0))
            return status_of(line), sent
        except OSError:
            return "reset before its answer was read", sent  # closed on unread bytes: an RST
        except TimeoutError:
            return "no answer in the window", sent
    finally:
        answer.cancel()
        writer.close()


async def bodies(a: Attack) -> None:
    started = [0]
    written = [0]

    async def sender() -> None:
        while not a.over() and started[0] < BODIES_MAX:
            started[0] += 1
            status, sent = await big_body(a)
            a.notes[f"body {status}"] += 1
            written[0] += sent
            if status == "stopped at the RSS guard":
                return

    await asyncio.gather(*(sender() for _ in range(BODIES_AT_ONCE)))
    a.notes[f"body GiB written {written[0] / (1 << 30):.1f}"] += 1


async def answered(request: Awaitable[httpx.Response], a: Attack) -> str:
    try:
        return str((await asyncio.wait_for(request, a.left())).status_code)
    except TimeoutError:
        return "no answer in the window"
    except httpx.HTTPError as exc:
        return type(exc).__name__


async def thumbnails(a: Attack, pictures: dict[int, bytes]) -> None:
    limits = httpx.Limits(max_connections=len(WIDTHS) * PER_SIDE * len(SIDES) + 2)
    async with httpx.AsyncClient(base_url=a.base, headers=a.auth("mallory"), timeout=None, limits=limits) as api:
        for side, data in pictures.items():
            upload = api.post("/v1/uploads", files={"file": (f"{side}.png", data, "image/png")})
            a.notes[f"upload {side}² {await answered(upload, a)}"] += 1
        for round_ in range(THUMB_ROUNDS):
            if a.over():
                break
            keys = [picture_key(side, round_ * PER_SIDE + i) for side in SIDES for i in range(PER_SIDE)]
            wanted = [(key, width) for key in keys for width in WIDTHS]
            asked = [answered(api.get(f"/v1/artifacts/{k}", params={"width": w}), a) for k, w in wanted]
            for (key, _), status in zip(wanted, await asyncio.gather(*asked), strict=True):
                a.notes[f"thumb {key.rsplit('/', 1)[1].split('-')[0]}² {status}"] += 1


async def streams(a: Attack) -> None:
    connecting = asyncio.Semaphore(STREAM_CONNECTS_AT_ONCE)
    open_now = [0, 0]  # open, most open at once
    request = (
        f"GET /v1/runs/{HELD_RUN}/events HTTP/1.1\r\nHost: 127.0.0.1:{a.port}\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {a.v.keys['trudy']}\r\n\r\n"
    ).encode()

    async def one() -> None:
        async with connecting:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", a.port), a.left())
            except (OSError, TimeoutError):
                a.notes["stream no connection"] += 1
                return
            try:
                writer.write(request)
                status = status_of(await asyncio.wait_for(reader.readline(), a.left()))
            except (OSError, TimeoutError):
                status = "no answer in the window"
        a.notes[f"stream {status}"] += 1
        try:
            if status == "200":
                open_now[0] += 1
                open_now[1] = max(open_now)
                while not a.over():  # held, read and dropped, until the window ends
                    if not await asyncio.wait_for(reader.read(1 << 16), a.left()):
                        a.notes["stream 200 closed by the server"] += 1
                        break
        except (OSError, TimeoutError):
            pass
        finally:
            open_now[0] -= status == "200"
            writer.close()

    await asyncio.gather(*(one() for _ in range(STREAMS)))
    a.notes[f"streams open at once {open_now[1]}"] += 1


async def creates(a: Attack) -> None:
    assert a.v.client is not None
    client = a.v.client
    runs_before = (await client.count_workflows(MALLORY_RUNS)).count
    most = [0]

    async def watch() -> None:
        while not a.over():
            with contextlib.suppress(Exception):
                most[0] = max(most[0], (await client.count_workflows(MALLORY_RUNS + RUNNING)).count)
            await asyncio.sleep(0.25)

    watching = asyncio.create_task(watch())
    limits = httpx.Limits(max_connections=CREATES)
    async with httpx.AsyncClient(base_url=a.base, headers=a.auth("mallory"), timeout=None, limits=limits) as api:
        jobs = [
            {"prompt": f"flood {n}", "max_iterations": 2, "threshold": 100, "technical_weight": 0}
            for n in range(CREATES)
        ]
        for status in await asyncio.gather(*(answered(api.post("/v1/images", json=job), a) for job in jobs)):
            a.notes[f"create {status}"] += 1
    await watching
    started = (await client.count_workflows(MALLORY_RUNS)).count - runs_before
    a.notes[f"creates started {started} runs, most running at once {most[0]}"] += 1


async def idle(a: Attack) -> None:
    return None


# ---------------------------------------------------------------------------------------------- the good tenant


async def good_tenant(base: str, key: str, run_id: str, artifact: str) -> None:
    """Small requests on a fixed schedule, each sent on time whether or not the ones before it have been
    answered (so a stalled server delays every request due in the stall, not only the one it holds), until a
    line arrives on stdin; then their latencies (ms) and statuses as JSON. The first round of four warms up
    (not counted); after it, "ready"."""
    paths = ["/healthz", f"/v1/runs/{run_id}", f"/v1/artifacts/{artifact}", "/v1/runs?limit=20"]
    latencies: list[float] = []
    kinds: list[int] = []  # which of `paths` each latency is
    offsets: list[float] = []  # when each was sent, in seconds after "ready"
    statuses: Counter = Counter()
    in_flight: dict[int, float] = {}  # request number → when it was sent
    stopped: list[bool] = []
    ready: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=GOOD_MAX_IN_FLIGHT)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=GOOD_TIMEOUT_S, limits=limits) as api:

        async def one(n: int, path: str) -> None:
            in_flight[n] = time.perf_counter()
            try:
                status = str((await api.get(path)).status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            if stopped:
                return
            sent = in_flight.pop(n)
            if n >= len(paths):
                latencies.append((time.perf_counter() - sent) * 1000)
                kinds.append(n % len(paths))
                offsets.append(sent - ready[0])
                statuses[status] += 1

        for n, path in enumerate(paths):  # the warm-up round, one after another
            await one(n, path)
        ready.append(time.perf_counter())
        print("ready", flush=True)

        async def scheduled() -> None:
            tasks = set()
            began = time.monotonic()
            for n in itertools.count(len(paths)):
                await asyncio.sleep(max(0.0, began + (n - len(paths)) * GOOD_EVERY_S - time.monotonic()))
                if len(in_flight) >= GOOD_MAX_IN_FLIGHT:
                    statuses["not sent: too many in flight"] += 1
                    continue
                task = asyncio.create_task(one(n, paths[n % len(paths)]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        sending = asyncio.create_task(scheduled())
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        sending.cancel()
        stopped.append(True)
        ended = time.perf_counter()
        for n, sent in in_flight.items():  # cut short at the window's end: the time so far is a lower bound
            latencies.append((ended - sent) * 1000)
            kinds.append(n % len(paths))
            offsets.append(sent - ready[0])
            statuses["in flight at the window's end"] += 1
    print(json.dumps({"latencies": latencies, "kinds": kinds, "offsets": offsets, "statuses": statuses}), flush=True)


@contextlib.asynccontextmanager
async def good_running(v: Variant, base: str):
    """The good tenant's process, ready; yields a function that stops it and returns what it measured."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.abuse", "good", base, v.keys["good"], v.good_run, v.good_artifact,
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, preexec_fn=served_priority,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None

    async def finish() -> dict[str, Any]:
        process.stdin.write(b"stop\n")
        await process.stdin.drain()
        measured = json.loads(await asyncio.wait_for(process.stdout.read(), GOOD_TIMEOUT_S + 10))
        await asyncio.wait_for(process.wait(), GOOD_TIMEOUT_S + 10)
        return measured

    try:
        if (await asyncio.wait_for(process.stdout.readline(), 60)).strip() != b"ready":
            raise RuntimeError("the good tenant did not start")
        yield finish
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


# ---------------------------------------------------------------------------------------------- phases


async def phase(v: Variant, name: str, pictures: dict[int, bytes]) -> Outcome:
    attacks: dict[str, list[Callable[[Attack], Awaitable[None]]]] = {
        "idle": [idle],
        "bodies": [bodies],
        "thumbnails": [lambda a: thumbnails(a, pictures)],
        "streams": [streams],
        "creates": [creates],
    }
    attacks["together"] = [*attacks["bodies"], *attacks["thumbnails"], streams, creates]
    async with serving(v, f"api-{name}.log") as (base, api), good_running(v, base) as finish:
        attack = Attack(v, base, api.pid, time.monotonic() + WINDOWS_S[name])
        await asyncio.gather(*(run(attack) for run in attacks[name]))
        await asyncio.sleep(attack.left() if not attack.over() else 0)  # every window is as long for both
        measured = await finish()
        peak = memory_mb(api.pid, "VmHWM")
    if name in ("creates", "together"):
        await release(v)
    good = Counter(measured["statuses"])
    return Outcome(measured["latencies"], measured["kinds"], measured["offsets"], good, peak, attack.notes)


async def run_variant(
    v: Variant, phases: list[str], pictures: dict[int, bytes], settings: list[str]
) -> dict[str, Outcome]:
    env: WorkflowEnvironment = await start_dev_server(port=free_port())
    os.setpriority(os.PRIO_PROCESS, 0, ATTACKERS_NICE)  # this process attacks; what it starts from now is served
    v.client = env.client
    v.env = variant_env(v.tree, v.data, address_of(env), settings)
    outcomes: dict[str, Outcome] = {}
    try:
        started = time.monotonic()
        await set_up(v, pictures)
        print(f"[{v.name}] code from {v.code}; set up in {time.monotonic() - started:.0f} s", flush=True)
        for name in phases:
            started = time.monotonic()
            outcomes[name] = found = await phase(v, name, pictures)
            print(
                f"[{v.name}] {name} ({time.monotonic() - started:.0f} s): {spread(found)}; "
                f"peak RSS {found.peak_rss_mb:.0f} MB",
                flush=True,
            )
    finally:
        served_priority()
        if v.worker is not None:
            stop(v.worker)
        await env.shutdown()
    return outcomes


# ---------------------------------------------------------------------------------------------- report


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return f"{os.cpu_count()} x {cpu}, {memory:.0f} GiB, Python {platform.python_version()}"


def spread(o: Outcome) -> str:
    """The good tenant's latencies: p50, p95 and max, and each kind of request's p95."""
    values = o.latencies_ms
    each = ", ".join(
        f"{kind} {pct([v for v, k in zip(values, o.kinds, strict=True) if k == n], 0.95):.0f}"
        for n, kind in enumerate(GOOD_KINDS)
    )
    return (
        f"{len(values)} good requests, p50 {pct(values, 0.5):.0f} / p95 {pct(values, 0.95):.0f} / max "
        f"{max(values, default=math.nan):.0f} ms (p95 by request: {each})"
    )


def slow_ones(o: Outcome, over_ms: float) -> str:
    """How many of the good tenant's requests took more than `over_ms`, and when in the window they were sent."""
    sent = sorted(t for v, t in zip(o.latencies_ms, o.offsets_s, strict=True) if v > over_ms)
    if not sent:
        return ""
    seconds = sorted({math.floor(t) for t in sent})
    return f"{len(sent)} over {over_ms:.0f} ms (2x idle p95), sent in seconds {spans(seconds)} of the window"


def spans(seconds: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] → '0-2, 5, 7-8'."""
    runs: list[list[int]] = []
    for second in seconds:
        if runs and second == runs[-1][-1] + 1:
            runs[-1].append(second)
        else:
            runs.append([second])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)


def short(notes: Counter, good: Counter) -> str:
    """The attack's answers, by status, and the good tenant's answers other than 200."""
    shown = ", ".join(f"{k}" + (f" x{n}" if n > 1 else "") for k, n in sorted(notes.items()))
    bad = {k: n for k, n in good.items() if k != "200"}
    return shown + (f"; good tenant got {bad}" if bad else "")


def report(results: dict[str, dict[str, Outcome]], phases: list[str]) -> None:
    sides = [s for s in ("before", "after") if s in results]
    idle_p95 = {s: pct(results[s]["idle"].latencies_ms, 0.95) if "idle" in results[s] else math.nan for s in sides}
    head = ["phase"]
    for label in ("p95 ms", "p95/idle", "peak RSS MB"):
        head += [f"{s} {label}" for s in sides]
    rows = []
    for name in phases:
        row = [name]
        found = [results[s][name] for s in sides]
        row += [f"{pct(o.latencies_ms, 0.95):.0f}" for o in found]
        row += [f"{pct(o.latencies_ms, 0.95) / idle_p95[s]:.2f}" for s, o in zip(sides, found, strict=True)]
        row += [f"{o.peak_rss_mb:.0f}" for o in found]
        rows.append(row)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    print()
    for n, row in enumerate([head, *rows]):
        print(
            " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
        if n == 0:
            print("-|-".join("-" * w for w in widths))
    print("\nnotes (attack answers by status; the good tenant's answers other than 200):")
    for name in phases:
        for s in sides:
            o = results[s][name]
            print(f"  {name:<10} {s:<6} {short(o.notes, o.good)}\n  {'':<10} {'':<6} {spread(o)}")
            if name != "idle" and (slow := slow_ones(o, GOAL_RATIO * idle_p95[s])):
                print(f"  {'':<10} {'':<6} {slow}")
    for s in sides:
        misses = [
            f"{name} p95 {pct(results[s][name].latencies_ms, 0.95) / idle_p95[s]:.2f}x idle"
            for name in phases
            if name != "idle" and pct(results[s][name].latencies_ms, 0.95) > GOAL_RATIO * idle_p95[s]
        ] + [
            f"{name} peak RSS {results[s][name].peak_rss_mb:.0f} MB"
            for name in phases
            if results[s][name].peak_rss_mb >= GOAL_RSS_MB
        ]
        verdict = "every phase within the goals" if not misses else "misses: " + "; ".join(misses)
        print(f"goal (p95 <= {GOAL_RATIO:.0f}x idle, peak RSS < {GOAL_RSS_MB} MB), {s}: {verdict}")


async def main(args: argparse.Namespace) -> None:
    began = time.monotonic()
    phases = args.phases.split(",")
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise SystemExit(f"--phases: unknown {sorted(unknown)}; choose from {','.join(PHASES)}")
    if "idle" not in phases:
        phases.insert(0, "idle")
    pictures = {side: picture(side) for side in SIDES} if {"thumbnails", "together"} & set(phases) else {}
    git = ["git", "-C", str(ROOT)]
    dirty = subprocess.run([*git, "status", "--porcelain", "--", ".", ":!bench/abuse.py"], capture_output=True)
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"machine: {machine()}")
    changed = " with uncommitted changes" if dirty.stdout.strip() else ""
    tree = f"this working tree, HEAD {head.stdout.strip()}{changed}"
    after = f"{args.after} (unpacked into /tmp)" if args.after else tree
    print(f"before = {args.before} (unpacked into /tmp); after = {after}")
    sizes = ", ".join(f"{side}² PNG {len(data) / 1e6:.1f} MB" for side, data in pictures.items())
    chosen = f"; set for both: {' '.join(args.set)}" if args.set else ""
    print(f"windows (s): {WINDOWS_S}; pictures: {sizes}{chosen}")
    results: dict[str, dict[str, Outcome]] = {}
    with tempfile.TemporaryDirectory(prefix="atelier-abuse-") as tmp:
        trees = {"before": unpacked(args.before), "after": unpacked(args.after) if args.after else ROOT}
        for name in [args.only] if args.only else ["before", "after"]:
            data = Path(tmp) / name
            data.mkdir()
            try:
                results[name] = await run_variant(Variant(name, trees[name], data), phases, pictures, args.set)
            finally:
                kept = LOGS / name
                shutil.rmtree(kept, ignore_errors=True)
                kept.mkdir(parents=True)
                for log in data.glob("*.log"):
                    shutil.copy(log, kept / log.name)
    report(results, phases)
    print(f"\nthe API's and the worker's logs: {LOGS}/<variant>/")
    print(f"total {time.monotonic() - began:.0f} s; `python -m bench.abuse {' '.join(sys.argv[1:])}`".rstrip())


if __name__ == "__main__":
    if sys.argv[1:2] == ["good"]:
        asyncio.run(good_tenant(*sys.argv[2:6]))
    else:
        parser = argparse.ArgumentParser(prog="python -m bench.abuse", description=__doc__.split("\n\n")[0])
        parser.add_argument("--only", choices=["before", "after"])
        parser.add_argument("--phases", default=",".join(PHASES))
        parser.add_argument("--before", default=BEFORE, help="the commit to compare with")
        parser.add_argument("--after", help="a commit to measure instead of the working tree")
        parser.add_argument(
            "--set", action="append", default=[], metavar="NAME=VALUE", help="a setting for both variants' processes"
        )
        asyncio.run(main(parser.parse_args()))

"""People's verdicts benchmark, on a dev server with in-process workers (each offline model its own provider) and
the API as its own `python -m starter serve` process on SQLite (the default database):

(a) ratings written through the API: the first rating of each picture (it reads the picture's run), then
    `--ratings` more from 8 keys at once (each a replace of that key's rating): ratings per second, p50/p95;
(b) 100,000 stored votes (bulk-written, 20 models, 10 % ties, winners drawn from known strengths, between
    1,000 rated pictures): `GET /v1/leaderboard` (Bradley–Terry, 1,000 bootstrap resamples) and `GET /v1/judge`
    through the API, best of 3, beside `kit.stats.leaderboard` alone on the same votes;
(c) the database's size on disk (after a WAL checkpoint), in all and per vote.

`python -m bench.ratings [--votes 100000] [--ratings 2000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time

import httpx
from sqlalchemy import insert

from activities.providers import Providers
from bench.api import pct
from bench.leaderboard import synthetic_votes
from kit import stats
from kit.api_keys import KeyStore
from kit.db import database, ready
from kit.db.base import now
from kit.db.ratings import RatedArtifact, Vote, pair_of
from kit.storage import LocalStore
from models.catalog import OFFLINE_MODELS, from_settings
from models.settings import EVENTS_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE, Settings
from tests.conftest import ROOT, address_of, free_port, start_dev_server
from workers.registry import build_workers

TENANT = "bench"
RATERS = 8
QUEUES = [WORKFLOW_QUEUE, TEXT_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE, EVENTS_QUEUE]


async def wait_up(url: str, timeout_s: float = 90) -> None:
    """Until the API answers (a busy machine takes a while to start it)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("the API did not come up")


async def pictures(api: httpx.AsyncClient) -> list[str]:
    """An experiment's pictures: 4 rows × the three offline models, two iterations a cell."""
    body = {
        "pipeline": "image",
        "dataset": {"rows": [{"prompt": f"a red kite over a green hill, scene {n}"} for n in range(4)]},
        "base": {"max_iterations": 2, "threshold": 100, "technical_weight": 0, "options": {"quality": "low"}},
        "variants": [{"name": model, "set": {"models.image": model}} for model in OFFLINE_MODELS],
    }
    experiment = (await api.post("/v1/experiments", json=body)).json()["id"]
    while (view := (await api.get(f"/v1/experiments/{experiment}")).json())["status"] == "running":
        await asyncio.sleep(0.5)
    keys = []
    for cell in view["outcomes"]:
        result = (await api.get(f"/v1/runs/{cell['child_id']}/result")).json()
        keys += [it["image"]["key"] for it in result["iterations"]]
    return keys


async def rating_rate(base: str, keys: list[str], api_keys: list[str], count: int) -> str:
    first: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=60, headers={"Authorization": f"Bearer {api_keys[0]}"}) as api:
        for key in keys:
            sent = time.perf_counter()
            answer = await api.post("/v1/ratings", json={"artifact": key, "stars": 3})
            assert answer.status_code == 201, answer.text
            first.append(time.perf_counter() - sent)
    took: list[float] = []

    async def rater(api_key: str, n: int) -> None:
        headers = {"Authorization": f"Bearer {api_key}"}
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as api:
            for i in range(n):
                sent = time.perf_counter()
                body = {"artifact": keys[i % len(keys)], "stars": 1 + i % 5, "tags": ["bench"]}
                answer = await api.post("/v1/ratings", json=body)
                assert answer.status_code == 201, answer.text
                took.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(rater(k, count // len(api_keys)) for k in api_keys))
    wall = time.perf_counter() - started
    return (
        f"(a) first rating of each of {len(keys)} pictures (reads its run): p50 {pct(first, 0.5) * 1000:.0f} ms, "
        f"p95 {pct(first, 0.95) * 1000:.0f} ms; then {len(took)} ratings from {len(api_keys)} keys at once: "
        f"{len(took) / wall:.0f} ratings/s, p50 {pct(took, 0.5) * 1000:.0f} ms, p95 {pct(took, 0.95) * 1000:.0f} ms"
    )


def store_votes(settings: Settings, count: int) -> list[tuple[str, str, str]]:
    """`count` synthetic votes between 1,000 pictures of 20 models (50 each), written in bulk; the votes."""
    votes, _ = synthetic_votes(20, count)
    rng = random.Random(0)
    pictures_of = {
        model: [f"runs/bench.synthetic-{model}/iteration-{n:02d}.png" for n in range(50)]
        for model in sorted({name for a, b, _ in votes for name in (a, b)})
    }
    made = now()
    artifacts = [
        {"tenant": TENANT, "key": key, "run": key.split("/")[1], "pipeline": "image", "kind": "iteration"}
        | {"prompt": "a synthetic prompt", "model": model, "judge": "offline", "score": float(rng.randint(20, 95))}
        | {"threshold": 60.0, "experiment": None, "variant": None, "row": None, "recorded_at": made}
        for model, keys in pictures_of.items()
        for key in keys
    ]
    rows = []
    for n, (a, b, winner) in enumerate(votes):
        key_a, key_b = rng.choice(pictures_of[a]), rng.choice(pictures_of[b])
        rows.append(
            {"id": f"vt_bench{n:09d}", "tenant": TENANT, "rater": f"r{n}", "pair": pair_of(key_a, key_b)}
            | {"a": key_a, "b": key_b, "winner": winner, "experiment": None, "voted_at": made}
        )
    db = ready(database(settings.database_address))
    with db.writing() as session:
        session.execute(insert(RatedArtifact), artifacts)
        for start in range(0, len(rows), 10_000):
            session.execute(insert(Vote), rows[start : start + 10_000])
    return votes


async def board_time(base: str, api_key: str, votes: list[tuple[str, str, str]]) -> str:
    timed = {}
    async with httpx.AsyncClient(base_url=base, timeout=300, headers={"Authorization": f"Bearer {api_key}"}) as api:
        for path in ("/v1/leaderboard", "/v1/judge"):
            best = float("inf")
            for _ in range(3):
                sent = time.perf_counter()
                answer = await api.get(path)
                assert answer.status_code == 200, answer.text
                best = min(best, time.perf_counter() - sent)
            timed[path] = (best, answer.json())
    alone = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        stats.leaderboard(sorted(votes))
        alone = min(alone, time.perf_counter() - started)
    board = timed["/v1/leaderboard"][1]
    return (
        f"(b) {board['votes']:,} votes, {len(board['entries'])} models: GET /v1/leaderboard "
        f"{timed['/v1/leaderboard'][0]:.2f} s (kit.stats.leaderboard alone {alone:.2f} s), GET /v1/judge "
        f"{timed['/v1/judge'][0]:.2f} s (best of 3)"
    )


def size_of(settings: Settings, votes: int) -> str:
    path = settings.data_dir / "atelier.db"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    total = sum(p.stat().st_size for p in path.parent.glob("atelier.db*"))
    return f"(c) database {total / 1e6:.1f} MB on disk after the checkpoint: {total / max(votes, 1):.0f} bytes a vote"


async def main(count: int, ratings: int) -> None:
    env = await start_dev_server()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        variables = {"TEMPORAL_ADDRESS": address_of(env), "ATELIER_DATA_DIR": tmp, "ATELIER_API_PORT": str(port)}
        variables["ATELIER_API_RATE_PER_MINUTE"] = "1000000"  # the keys' request rate is not what is measured
        settings = Settings(**variables, LLM_API_KEY=None)
        api_keys = [KeyStore(settings).add(TENANT)[0] for _ in range(RATERS)]
        providers = Providers(from_settings(settings), settings)
        workers = build_workers(env.client, QUEUES, providers, LocalStore(settings.artifact_dir), settings)
        api_env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "ATELIER_"))} | variables
        api_proc = subprocess.Popen([sys.executable, "-m", "starter", "serve"], cwd=ROOT, env=api_env)
        try:
            async with contextlib.AsyncExitStack() as stack:
                for worker in workers:
                    await stack.enter_async_context(worker)
                await wait_up(settings.api_url)
                headers = {"Authorization": f"Bearer {api_keys[0]}"}
                async with httpx.AsyncClient(base_url=settings.api_url, timeout=60, headers=headers) as api:
                    keys = await pictures(api)
                print(await rating_rate(settings.api_url, keys, api_keys, ratings), flush=True)
                votes = store_votes(settings, count)
                print(await board_time(settings.api_url, api_keys[0], votes), flush=True)
                print(size_of(settings, count), flush=True)
        finally:
            api_proc.terminate()
            api_proc.wait(10)
    await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--ratings", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.votes, args.ratings))

"""Atelier Studio benchmark: the experiment page with 3,000 cells (1,000 rows × the three offline models) in Debian's
chromium (Playwright), against a real dev server, in-process workers (one provider per offline model, as a worker
has, at zero latency; no scoring worker: the cells' score is the judge's fidelity) and the API served in-process
by uvicorn. Nothing leaves loopback; the servers, the browser and the temporary folder are gone when it ends.

The experiment is made for real through `POST /v1/experiments` (a pilot first: when the whole one would take longer
than `--make-budget`, a smaller one, said so). Then its page, a fresh browser context per load:
- first contentful paint, DOMContentLoaded, load and the server's answer (TTFB); the HTML's bytes;
- the bytes the browser transferred at the load event (page, CSS, scripts and the thumbnails near the first screen:
  they load lazily) and once scrolled through (every thumbnail), beside what the same pictures weigh as originals;
- named mode cold (the API makes each 96-px thumbnail when first asked) and warm, and blind mode warm (each picture
  by an opaque token: one redirect more each);
and, outside the browser, the server's time for the page and for the part a live page asks for after an event.

    python -m bench.experiment_page [--rows 1000] [--loads 3] [--make-budget 900]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from activities.providers import Providers
from bench.studio import RATE, RESOURCES, SCROLL, context_of, ms, ratio, size, table
from kit.storage import LocalStore
from models.catalog import from_settings
from models.settings import SCORING_QUEUE
from tests.api_support import api_settings, serving
from tests.conftest import address_of, running_workers, start_dev_server
from tests.studio_support import CHROMIUM, FLAGS
from workers.registry import QUEUES

DEADLINE_S = 1800  # the whole benchmark stops by itself after this
PORTS = range(29_000, 32_000)  # its dev server's port: away from the test runs' (tests.conftest.free_port)
PILOT_ROWS = 20
MODELS = ("offline", "offline-vivid", "offline-sketch")
BASE = {"max_iterations": 1, "technical_weight": 0, "threshold": 60, "options": {"quality": "low"}}
SUBJECTS = ["fox", "lighthouse", "teapot", "owl", "bicycle", "cactus", "violin", "whale", "castle", "kite"]
COLOURS = ["red", "blue", "green", "yellow", "purple"]
PAINT = """async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const nav = () => performance.getEntriesByType("navigation")[0];
  for (let i = 0; i < 500 && !nav().loadEventEnd; i++) await sleep(20);
  let fcp = null;
  for (let i = 0; i < 100 && fcp === null; i++) {
    const p = performance.getEntriesByName("first-contentful-paint")[0];
    if (p) fcp = p.startTime; else await sleep(20);
  }
  return { fcp, cells: document.querySelectorAll("#experiment .cell").length, decoded: nav().decodedBodySize };
}"""


def own_port() -> int:
    """A free loopback port in PORTS: a test run's dev server on the same machine never shares it (its workers
    would take this one's tasks, and write to another store)."""
    while True:
        port = random.choice(PORTS)
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            return port


def body(rows: int) -> dict[str, Any]:
    prompts = [
        f"a {COLOURS[n % 5]} {SUBJECTS[n % 10]} on a {COLOURS[(n + 2) % 5]} hill, study {n}" for n in range(rows)
    ]
    return {
        "pipeline": "image",
        "dataset": {"rows": [{"prompt": p} for p in prompts]},
        "base": BASE,
        "variants": [{"name": model, "set": {"models.image": model}} for model in MODELS],
        "baseline": "offline",
        "max_parallel": 64,
    }


async def make(api: httpx.AsyncClient, env: WorkflowEnvironment, rows: int, timeout: float) -> tuple[str, float]:
    """An experiment of `rows` rows × the three models, to its end; its id and the seconds it took."""
    started = time.perf_counter()
    created = (await api.post("/v1/experiments", json=body(rows))).raise_for_status().json()
    await asyncio.wait_for(env.client.get_workflow_handle(created["id"]).result(), timeout)
    return created["id"], time.perf_counter() - started


async def page_load(browser: Any, url: str) -> dict[str, Any]:
    """One load of the page in a fresh context: paint, bytes at the load event, then scrolled through."""

    def pictures(resources: list) -> list:
        return [r for r in resources if "/v1/artifacts/" in r[0] or "/pictures/" in r[0]]

    async with context_of(browser) as context:
        await context.add_init_script("performance.setResourceTimingBufferSize(100000);")
        page = await context.new_page()
        statuses: dict[int, int] = {}
        page.on("response", lambda r: statuses.__setitem__(r.status, statuses.get(r.status, 0) + 1))
        await page.goto(url, wait_until="load", timeout=180_000)
        paint = await page.evaluate(PAINT)
        at_load = await page.evaluate(RESOURCES)
        scrolled = await page.evaluate(SCROLL)
        await page.wait_for_load_state("networkidle", timeout=120_000)
        after = await page.evaluate(RESOURCES)

    def summary(found: dict) -> dict:
        fetched = pictures(found["resources"])
        return {"transfer": found["transfer"] + sum(r[1] for r in found["resources"]), "pictures": len(fetched),
                "picture_bytes": sum(r[1] for r in fetched)}  # fmt: skip

    return {
        **paint,
        "ttfb": at_load["ttfb"],
        "dcl": at_load["dcl"],
        "load": at_load["load"],
        "html": at_load["html"],
        "at_load": summary(at_load),
        "after": summary(after),
        "all_loaded": scrolled["done"],
        "scrolled": scrolled,
        "statuses": statuses,
    }


async def server_times(base: str, experiment: str, loads: int) -> tuple[float, float, int]:
    """Median seconds of the page's answer and of a live page's part after an event (its last 8 cells), and the
    part's bytes."""
    async with httpx.AsyncClient(base_url=base, timeout=120) as api:
        view = (await api.get(f"/v1/experiments/{experiment}")).raise_for_status().json()
        since = max(0, max(c["order"] for c in view["outcomes"]) - 8)
        pages, parts, part_bytes = [], [], 0
        for _ in range(loads):
            started = time.perf_counter()
            (await api.get(f"/experiments/{experiment}", headers={"Accept": "text/html"})).raise_for_status()
            pages.append(time.perf_counter() - started)
            started = time.perf_counter()
            part = (await api.get(f"/experiments/{experiment}/part", params={"since": since})).raise_for_status()
            parts.append(time.perf_counter() - started)
            part_bytes = len(part.content)
    return statistics.median(pages), statistics.median(parts), part_bytes


async def measure(args: argparse.Namespace, env: WorkflowEnvironment, browser: Any, folder: Path) -> None:
    settings = api_settings(address_of(env), folder, ATELIER_API_RATE_PER_MINUTE=RATE)
    providers = Providers(from_settings(settings), settings)  # zero latency: settings.offline_latency_s is 0
    store = LocalStore(settings.artifact_dir)
    queues = [queue for queue in QUEUES if queue != SCORING_QUEUE]
    async with (
        running_workers(env.client, providers, store, queues, settings),
        serving(settings, env.client) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=60) as api,
    ):
        _, pilot_s = await make(api, env, PILOT_ROWS, 300)
        estimate = pilot_s * args.rows / PILOT_ROWS
        rows = args.rows
        if estimate > args.make_budget:
            rows = max(PILOT_ROWS, int(args.rows * args.make_budget / estimate))
        smaller = f"; over --make-budget {args.make_budget:.0f} s: made {rows} rows instead" if rows < args.rows else ""
        print(
            f"pilot: {PILOT_ROWS} rows x 3 in {pilot_s:.1f} s ({3 * PILOT_ROWS / pilot_s:.1f} cells/s) -> "
            f"{args.rows} rows estimated at {estimate:.0f} s{smaller}",
            flush=True,
        )
        experiment, made_s = await make(api, env, rows, max(600.0, 3 * estimate))
        print(f"made: {rows} rows x 3 models = {3 * rows} cells in {made_s:.1f} s ({3 * rows / made_s:.1f} cells/s)")
        cells = (await api.get(f"/v1/experiments/{experiment}")).raise_for_status().json()["outcomes"]
        originals = sum([len(await store.read(c["picture"])) for c in cells if c["picture"]])  # every one is shown
        url = f"{base}/experiments/{experiment}"
        loads = [("named, cold", await page_load(browser, url))]
        loads += [(f"named, warm #{n + 1}", await page_load(browser, url)) for n in range(args.loads)]
        loads += [("blind, warm", await page_load(browser, url + "?mode=blind"))]
        page_s, part_s, part_bytes = await server_times(base, experiment, args.loads)
    head = ["the page /experiments/<id>", "TTFB", "FCP", "DCL", "load", "HTML (gzip)", "at load: all bytes"]
    head += ["pictures"]
    head += ["scrolled: all bytes", "pictures", "all loaded at", "pictures/originals"]
    lines = []
    for name, found in loads:
        at, after = found["at_load"], found["after"]
        times = [ms(found["ttfb"]), ms(found["fcp"]), ms(found["dcl"]), ms(found["load"])]
        loaded = [size(at["transfer"]), str(at["pictures"]), size(after["transfer"]), str(after["pictures"])]
        ratios = [ms(found["all_loaded"]), ratio(after["picture_bytes"], originals)]
        html = f"{size(found['decoded'])} ({size(found['html'])})"
        lines.append([name, *times, html, *loaded, *ratios])
    table(
        f"the experiment page, {3 * rows} cells ({rows} rows x 3), a fresh browser context per load; cold: the API "
        "makes each thumbnail when first asked; scrolled: top to bottom by script until every picture loaded",
        head,
        lines,
    )
    print(
        f"    the {3 * rows} originals weigh {size(originals)} (PNG, 1024x1024); the cells' thumbnails are 96 px WebP"
    )
    for name, found in loads:
        s = found["scrolled"]
        print(f"    {name}: {found['cells']} cells drawn, {s['pictures']} pictures, {s['broken']} broken, "
              f"{s['pending']} never loaded; answers {dict(sorted(found['statuses'].items()))}")  # fmt: skip
    print(
        f"server: the page in {page_s * 1000:.0f} ms (its view: the grid queried, the report computed, "
        f"{3 * rows} cells rendered); a live page's part after an event (8 cells) in {part_s * 1000:.0f} ms, "
        f"{size(part_bytes)} (medians of {args.loads})",
        flush=True,
    )


async def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    from playwright.async_api import async_playwright

    env = await start_dev_server(port=own_port(), dev_server_log_level="error")
    failed = False
    try:
        async with contextlib.AsyncExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atelier-bench-experiment-")))
            playwright = await stack.enter_async_context(async_playwright())
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            stack.push_async_callback(browser.close)
            print(
                f"Atelier experiment page benchmark · {os.cpu_count()} CPUs · {platform.platform()} · Python "
                f"{platform.python_version()} · chromium {browser.version} (headless) · offline models at zero "
                f"latency, loopback only · the API's per-key limit raised to {RATE:,}/min",
                flush=True,
            )
            async with asyncio.timeout(DEADLINE_S):
                await measure(args, env, browser, folder)
    except Exception as exc:  # said, and the exit status says so
        failed = True
        print(f"failed: {exc!r}", flush=True)
    finally:
        await env.shutdown()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000, help="the experiment's rows (x 3 models: its cells)")
    parser.add_argument("--loads", type=int, default=3, help="warm loads of the page")
    parser.add_argument("--make-budget", type=float, default=900, help="seconds the experiment may take to make")
    sys.exit(asyncio.run(main(parser.parse_args())))

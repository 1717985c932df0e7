"""Atelier Studio benchmark: the studio's pages in Debian's chromium (Playwright's async API), against a real
dev server, in-process workers (offline provider) and the API served in-process by uvicorn. Nothing leaves
loopback; the servers, the browser and the temporary folder are gone when it ends.

(a) the runs page `/` with 1,000 runs beside the same page with 10: the server's answer, first contentful
    paint and interactive (domInteractive, DOMContentLoaded end), median of a few loads each (alternating,
    a fresh browser context per load), and the ratio 1,000/10. Every row is the same kind: an image run
    started through `POST /v1/images` in a namespace of its own where no worker polls, so it stays Running
    with no picture. Beside it: a search that matches nothing (it reads up to 1,000 runs), and the requests
    an open runs page keeps making (its rows refresh every 3 s);
(b) an image run page's live update after a step ends: for each iteration, when its card first shows in
    the page (a MutationObserver) and when the run's `iteration.completed` event reaches the page (an
    EventSource of the benchmark's own, in the page), after the step ended (the `evaluate_image` activity's
    ActivityTaskCompleted time in the run's history), p50/p95 and their ratio;
(c) a world page (50 characters x 20 posts, pictures on, made through `POST /v1/worlds` at zero model
    latency; a pilot world first, and a smaller world, said so, if the big one would take too long): the
    bytes the browser transfers at the load event and once scrolled through, and the load time, against
    what the same pictures weigh as originals in the store; with the server's thumbnails made on demand
    (cold) and made already (warm).

    python -m bench.studio [--runs 1000] [--loads 5] [--live-runs 4] [--characters 50] [--posts 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore
from models.settings import SCORING_QUEUE, Settings
from starter.studio.runs_page import PAGE, SEARCHED
from tests.api_support import api_settings, serving
from tests.conftest import address_of, running_workers, start_dev_server
from tests.studio_support import CHROMIUM, DESKTOP, FLAGS
from workers.registry import QUEUES

DEADLINE_S = 480  # the whole benchmark stops by itself after this
WORLD_BUDGET_S = 240  # the world of (c) is made smaller when the pilot says it would take longer
LATENCY_S = 0.3  # (b): each offline model call takes this long
RATE = 1_000_000  # the API's per-key limit, raised so it never refuses the benchmark's own requests (counted)
DEFAULT_RATE = Settings.model_fields["api_rate_per_minute"].default
WORKER_QUEUES = [q for q in QUEUES if q != SCORING_QUEUE]  # no torch: image runs score on fidelity alone
CREATE_AT_ONCE = 16
PROMPT = "a red lighthouse on a rocky coast at dusk, study {}"

NAVIGATION = """async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const nav = () => performance.getEntriesByType("navigation")[0];
  for (let i = 0; i < 100 && !nav().loadEventEnd; i++) await sleep(20);
  const n = nav();
  let fcp = null;
  for (let i = 0; i < 100 && fcp === null; i++) {
    const p = performance.getEntriesByName("first-contentful-paint")[0];
    if (p) fcp = p.startTime; else await sleep(20);
  }
  return { ttfb: n.responseStart - n.requestStart, fcp, interactive: n.domInteractive,
           dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd, html: n.encodedBodySize,
           rows: document.querySelectorAll("[data-run]").length };
}"""

# (b): in every document of the page, before its own script: when each card first shows, and (the first
# load only: the page reloads itself when the run ends) the benchmark's own EventSource on the run's events.
FOLLOW = """(() => {
  const m = location.pathname.match(/^\\/runs\\/([^/]+)$/);
  if (!m) return;
  const again = sessionStorage.getItem("bench-followed") === "1";
  sessionStorage.setItem("bench-followed", "1");
  const note = (kind, n) => window.__bench(kind, n, Date.now(), again);
  const seen = new Set();
  const look = () => {
    for (const card of document.querySelectorAll("[data-iteration]")) {
      const n = Number(card.dataset.iteration);
      if (!seen.has(n)) { seen.add(n); note("card", n); }
    }
  };
  new MutationObserver(look).observe(document, { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", () => note("dcl", 0));
  if (again) return;
  const source = new EventSource(`/v1/runs/${m[1]}/events`);
  source.onopen = () => note("open", 0);
  source.addEventListener("iteration.completed", (e) => note("event", JSON.parse(e.data).data.number));
  for (const t of ["run.completed", "run.failed", "run.cancelled"]) {
    source.addEventListener(t, () => { source.close(); note("end", 0); });
  }
})();"""

RESOURCES = """() => {
  const n = performance.getEntriesByType("navigation")[0];
  return { ttfb: n.responseStart - n.requestStart, dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd,
           transfer: n.transferSize, html: n.encodedBodySize,
           resources: performance.getEntriesByType("resource").map((e) => [e.name, e.transferSize]) };
}"""

# (c): scroll from top to bottom (lazy pictures load as they come near), then bring each picture still
# loading into view, until every one has loaded or failed; the time is since the navigation started.
SCROLL = """async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const pending = () => [...document.images].filter((i) => !i.complete);
  const deadline = performance.now() + 150000;
  for (let y = 0; y < document.documentElement.scrollHeight; y += innerHeight) { scrollTo(0, y); await sleep(25); }
  while (pending().length && performance.now() < deadline) { pending()[0].scrollIntoView(); await sleep(25); }
  const images = [...document.images];
  return { done: performance.now(), pending: pending().length, pictures: images.length,
           broken: images.filter((i) => i.complete && !i.naturalWidth).length,
           height: document.documentElement.scrollHeight };
}"""

SHOWN = """() => {
  const urls = [...document.images].map((i) => i.getAttribute("src"));
  const banner = document.querySelector(".banner");
  const m = banner && banner.style.backgroundImage.match(/url\\(["']?([^"')]+)/);
  if (m) urls.push(m[1]);
  return urls;
}"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def median_of(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "–"


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def size(value: float) -> str:
    return f"{value / 1e6:.2f} MB" if value >= 1e6 else f"{value / 1e3:.1f} kB"


def table(title: str, head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    print(f"\n{title}")
    for n, row in enumerate([head, *rows]):
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  " + "  ".join(cells).rstrip())
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))
    sys.stdout.flush()


@contextlib.asynccontextmanager
async def context_of(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser context (its own cache and storage), closed afterwards."""
    context = await browser.new_context(viewport=DESKTOP)
    try:
        yield context
    finally:
        await context.close()


async def create_images(base: str, count: int) -> float:
    """`count` image runs through the API, CREATE_AT_ONCE at a time; the seconds it took."""
    at_once = asyncio.Semaphore(CREATE_AT_ONCE)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=60) as api:

        async def one(n: int) -> None:
            async with at_once:
                body = {"prompt": PROMPT.format(n), "max_iterations": 4}
                (await api.post("/v1/images", json=body)).raise_for_status()

        await asyncio.gather(*(one(n) for n in range(count)))
    return time.perf_counter() - started


async def load(browser: Any, url: str) -> dict[str, Any]:
    async with context_of(browser) as context:
        page = await context.new_page()
        await page.goto(url, wait_until="load", timeout=60_000)
        return await page.evaluate(NAVIGATION)


async def open_page_requests(browser: Any, url: str, seconds: float) -> tuple[Counter, list[float]]:
    """What an open runs page asks for, by kind, in `seconds` after it loaded; how long each rows refresh took."""
    counted: Counter = Counter()
    refreshes: list[float] = []
    async with context_of(browser) as context:
        page = await context.new_page()
        await page.goto(url, wait_until="load", timeout=60_000)
        await page.wait_for_load_state("networkidle", timeout=30_000)

        def kind(request: Any) -> str:
            path = urlsplit(request.url)
            return "rows" if "part=rows" in path.query else "thumbnail" if path.path.endswith("/thumbnail") else "other"

        def finished(request: Any) -> None:
            if kind(request) == "rows":
                refreshes.append(request.timing["responseEnd"])

        page.on("request", lambda request: counted.update([kind(request)]))
        page.on("requestfinished", finished)
        await asyncio.sleep(seconds)
    return counted, refreshes


async def runs_section(browser: Any, address: str, folder: Path, small: int, big: int, loads: int) -> None:
    """(a): two namespaces with no worker, `small` and `big` running image runs, their runs pages side by side."""
    sides = {small: f"bench-rows-{small}", big: f"bench-rows-{big}"}
    async with contextlib.AsyncExitStack() as stack:
        bases: dict[int, str] = {}
        made = []
        for count, namespace in sides.items():
            client = await Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter)
            settings = api_settings(
                address, folder / namespace, TEMPORAL_NAMESPACE=namespace, ATELIER_API_RATE_PER_MINUTE=RATE
            )
            bases[count], _ = await stack.enter_async_context(serving(settings, client))
            made.append(f"{count} in {await create_images(bases[count], count):.1f} s")
        print(f"(a) image runs created through POST /v1/images, none polled: {', '.join(made)}", flush=True)
        for count in sides:  # warm-up: the first load of each is not counted
            await load(browser, bases[count] + "/")
        measured: dict[int, list[dict]] = {count: [] for count in sides}
        searched: dict[int, list[dict]] = {count: [] for count in sides}
        for _ in range(loads):
            for count in sides:
                measured[count].append(await load(browser, bases[count] + "/"))
        for _ in range(max(3, loads // 2)):
            for count in sides:
                searched[count].append(await load(browser, bases[count] + "/?q=no-such-prompt-anywhere"))
        window = 15.0
        asked, refreshes = await open_page_requests(browser, bases[big] + "/", window)
        _, searching = await open_page_requests(browser, bases[big] + "/?q=no-such-prompt-anywhere", window / 2)

    def median(values: list[dict], name: str) -> float | None:
        found = [v[name] for v in values if v[name] is not None]
        return statistics.median(found) if found else None

    head = [f"runs page `/`, median of {loads} loads", f"{small:,} runs", f"{big:,} runs", f"ratio {big}/{small}"]
    rows = []
    shown = [
        ("ttfb", "server answer (TTFB)"),
        ("fcp", "first contentful paint"),
        ("interactive", "domInteractive"),
        ("dcl", "DOMContentLoaded end"),
        ("load", "load event end"),
    ]
    for name, label in shown:
        a, b = median(measured[small], name), median(measured[big], name)
        rows.append([label, ms(a), ms(b), ratio(b, a)])
    a, b = median(measured[small], "html"), median(measured[big], "html")
    rows.append(["HTML transferred", size(a or 0), size(b or 0), ratio(b, a)])
    counts = [str(measured[side][0]["rows"]) for side in (small, big)]
    rows.append(["rows on the page", *counts, f"(a page lists {PAGE})"])
    for name, label in (("ttfb", "TTFB"), ("dcl", "DOMContentLoaded end")):
        a, b = median(searched[small], name), median(searched[big], name)
        rows.append([f"search matching none (reads <= {SEARCHED}): {label}", ms(a), ms(b), ratio(b, a)])
    title = "(a) runs page, every row a running image run (no picture yet), a fresh browser context per load"
    table(title, head, rows)
    per_minute = {kind: n * 60 / window for kind, n in asked.items()}
    total = sum(per_minute.values())
    print(
        f"    an open runs page of {big:,} runs ({PAGE} rows) asks, per minute: "
        + ", ".join(f"{kind} {n:.0f}" for kind, n in sorted(per_minute.items()))
        + f" = {total:.0f} requests/min ({total / DEFAULT_RATE:.0%} of the default per-key limit, "
        f"{DEFAULT_RATE}/min; over {window:.0f} s); each rows refresh {ms(median_of(refreshes))}; "
        + (
            f"while a search is shown, its rows refresh too (searching again): {ms(median_of(searching))} each"
            if searching
            else "a search's page does not refresh its rows"
        ),
        flush=True,
    )


async def step_ends(client: Client, run_id: str) -> dict[int, float]:
    """Iteration → when its `evaluate_image` activity completed (ms since the epoch, the server's clock)."""
    scheduled: dict[int, int] = {}
    ended: dict[int, float] = {}
    convert = client.data_converter.payload_converter
    history = await client.get_workflow_handle(run_id).fetch_history()
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "evaluate_image":
                scheduled[event.event_id] = int(
                    convert.from_payloads(list(attrs.input.payloads), [dict])[0]["iteration"]
                )
        elif event.HasField("activity_task_completed_event_attributes"):
            attrs = event.activity_task_completed_event_attributes
            if attrs.scheduled_event_id in scheduled:
                ended[scheduled[attrs.scheduled_event_id]] = event.event_time.ToDatetime(tzinfo=UTC).timestamp() * 1000
    return ended


async def live_section(browser: Any, base: str, client: Client, runs: int, iterations: int) -> None:
    """(b): image runs watched from their pages, one at a time."""
    cards: list[float] = []
    events: list[float] = []
    after_event: list[float] = []
    left_out = by_reload = 0
    async with httpx.AsyncClient(base_url=base, timeout=60) as api:
        for n in range(runs):
            records: list[tuple[str, int, float, bool]] = []

            def note(_source: Any, *args: Any, into: list = records) -> None:
                into.append(args)

            async with context_of(browser) as context:
                await context.expose_binding("__bench", note)
                await context.add_init_script(FOLLOW)
                page = await context.new_page()
                body = {
                    "prompt": f"a slow harbour at night, watched {n}",
                    "max_iterations": iterations,
                    "threshold": 100,
                    "technical_weight": 0,  # no scoring worker: fidelity alone
                }
                run_id = (await api.post("/v1/images", json=body)).json()["id"]
                await page.goto(f"{base}/runs/{run_id}", wait_until="commit")
                await asyncio.wait_for(client.get_workflow_handle(run_id).result(), 120)
                await page.wait_for_selector("#live:not([data-events])", timeout=60_000)  # reloaded at the end
                await page.wait_for_load_state("load")
                await asyncio.sleep(0.3)
            ended = await step_ends(client, run_id)
            first: dict[tuple[str, int], tuple[float, bool]] = {}
            for kind, number, at, again in records:
                first.setdefault((kind, int(number)), (at, again))
            following = max(first.get(("dcl", 0), (math.inf,))[0], first.get(("open", 0), (math.inf,))[0])
            for number, end in sorted(ended.items()):
                card, event = first.get(("card", number)), first.get(("event", number))
                if end < following or card is None or event is None:
                    left_out += 1  # ended before the page followed the run (its card came with the page)
                    continue
                cards.append(card[0] - end)
                events.append(event[0] - end)
                after_event.append(card[0] - event[0])
                by_reload += card[1]

    def spread(label: str, values: list[float]) -> list[str]:
        return [label, ms(pct(values, 0.5)), ms(pct(values, 0.95)), ms(max(values))]

    head = ["after a step ended (evaluate_image completed)", "p50", "p95", "max"]
    rows = [
        spread("its card appears in the page", cards),
        spread("its SSE iteration.completed arrives", events),
        ["ratio card / event", ratio(pct(cards, 0.5), pct(events, 0.5)), ratio(pct(cards, 0.95), pct(events, 0.95))],
        spread("card minus event", after_event),
    ]
    rows[2].append("")
    table(
        f"(b) image run page live updates: {len(cards)} iterations of {runs} runs x {iterations} "
        f"(offline {LATENCY_S:.1f} s per call, threshold 100, scored on fidelity alone)",
        head,
        rows,
    )
    print(
        f"    {left_out} iteration(s) left out (the step ended before the page followed the run); "
        f"{by_reload} card(s) first shown by the page's reload at the run's end, not by a live swap; the page "
        "refetches its live part on every event of the run (image.created, run.progress, ...) and that part asks "
        "the workflow itself, so a card can show before its own iteration.completed arrives",
        flush=True,
    )


async def make_world(api: httpx.AsyncClient, client: Client, characters: int, posts: int, timeout: float) -> tuple:
    body = {
        "prompt": "A harbour town of lamp lighters and cartographers",
        "characters": characters,
        "posts_per_character": posts,
        "images": True,
        "scoring": False,  # no scoring worker (torch): near-duplicate checks off
    }
    started = time.perf_counter()
    world_id = (await api.post("/v1/worlds", json=body)).raise_for_status().json()["id"]
    await asyncio.wait_for(client.get_workflow_handle(world_id).result(), timeout)
    return world_id, time.perf_counter() - started


async def world_load(browser: Any, url: str, originals: dict[str, int]) -> dict[str, Any]:
    """One load of the world page in a fresh context: at the load event, then scrolled through."""

    def pictures(resources: list) -> list:
        return [r for r in resources if urlsplit(r[0]).path.startswith("/v1/artifacts/")]

    def original(url: str) -> int:
        return originals.get(unquote(urlsplit(url).path.removeprefix("/v1/artifacts/")), 0)

    statuses: Counter = Counter()
    async with context_of(browser) as context:
        await context.add_init_script("performance.setResourceTimingBufferSize(100000);")
        page = await context.new_page()
        page.on("response", lambda response: statuses.update([response.status]))
        await page.goto(url, wait_until="load", timeout=120_000)
        at_load = await page.evaluate(RESOURCES)
        scrolled = await page.evaluate(SCROLL)
        await page.wait_for_load_state("networkidle", timeout=60_000)
        after = await page.evaluate(RESOURCES)
        shown = await page.evaluate(SHOWN)

    def summary(found: dict) -> dict:
        fetched = pictures(found["resources"])
        return {
            "transfer": found["transfer"] + sum(r[1] for r in found["resources"]),
            "pictures": len(fetched),
            "picture_bytes": sum(r[1] for r in fetched),
            "originals": sum(original(r[0]) for r in fetched),
        }

    return {
        "ttfb": at_load["ttfb"],
        "load": at_load["load"],
        "html": at_load["html"],
        "at_load": summary(at_load),
        "after": summary(after),
        "all_loaded": scrolled["done"],
        "scrolled": scrolled,
        "shown": len(shown),
        "shown_originals": sum(original(u) for u in shown),
        "requests": sum(statuses.values()),
        "statuses": dict(statuses),
    }


async def world_section(
    browser: Any, base: str, client: Client, settings: Settings, offline: OfflineProvider, characters: int, posts: int
) -> None:
    """(c): a pilot world, then the big one (or a smaller one, said so), and its page loaded cold and warm; then
    viewed twice in a row through an API on the same store with the default per-key limit."""
    store = settings.artifact_dir
    offline.latency_s = 0.0
    async with httpx.AsyncClient(base_url=base, timeout=60) as api:
        _, pilot_s = await make_world(api, client, 5, 4, 120)
        estimate = pilot_s * (characters * posts) / (5 * 4)  # per post, from a small world: an upper bound
        wanted = characters
        if estimate > WORLD_BUDGET_S:
            characters = max(5, math.floor(characters * WORLD_BUDGET_S / estimate))
        print(
            f"(c) pilot world 5x4 in {pilot_s:.1f} s -> {wanted}x{posts} estimated at <= {estimate:.0f} s"
            + (f"; too long for this run: made {characters}x{posts} instead" if characters != wanted else ""),
            flush=True,
        )
        world_id, made_s = await make_world(api, client, characters, posts, WORLD_BUDGET_S * 1.5)
    originals = {}
    for path in (store / "worlds" / world_id).rglob("*"):
        if path.is_file():
            originals[path.relative_to(store).as_posix()] = path.stat().st_size
    url = f"{base}/runs/{world_id}"
    cold = await world_load(browser, url, originals)
    warm = await world_load(browser, url, originals)
    shown = cold["shown"]
    label = f"{characters} characters x {posts} posts" + ("" if characters == wanted else f" (not {wanted})")
    print(
        f"    world {label} made in {made_s:.1f} s: {shown} pictures on its page "
        f"(icon, background, avatars, the posts that have one), {size(cold['shown_originals'])} as originals",
        flush=True,
    )
    head = ["world page /runs/<world id>", "time", "pictures", "picture bytes", "all bytes", "their originals"]
    head += ["pictures/orig", "all/orig"]
    rows = []
    for name, found in (("cold", cold), ("warm", warm)):
        for when, label, at in (("at_load", "load event", "load"), ("after", "scrolled through", "all_loaded")):
            got = found[when]
            rows.append([f"{name}, {label}", ms(found[at]), str(got["pictures"]), size(got["picture_bytes"])])
            rows[-1] += [size(got["transfer"]), size(got["originals"]), ratio(got["picture_bytes"], got["originals"])]
            rows[-1].append(ratio(got["transfer"], got["originals"]))
    table(
        "(c) world page, a new browser context per load; cold: the API makes each thumbnail on first request, "
        "warm: made already; scrolled through: by script, top to bottom, until every picture loaded",
        head,
        rows,
    )
    print(
        f"    server answer (TTFB) cold {ms(cold['ttfb'])}, warm {ms(warm['ttfb'])}; HTML {size(cold['html'])}; "
        f"all bytes = the page, its CSS and script, and the pictures",
        flush=True,
    )
    for name, found in (("cold", cold), ("warm", warm)):
        print(f"    {name}: {found['requests']} requests, {problems(found)}", flush=True)
    limited = settings.model_copy(update={"api_rate_per_minute": DEFAULT_RATE})
    async with serving(limited, client) as (other, _):
        views = [await world_load(browser, f"{other}/runs/{world_id}", originals) for _ in range(2)]
    print(
        f"    the same page through an API with the default per-key limit ({DEFAULT_RATE}/min), viewed twice in a "
        "row and scrolled through: "
        + "; ".join(f"view {n}: {found['requests']} requests, {problems(found)}" for n, found in enumerate(views, 1)),
        flush=True,
    )


def problems(found: dict[str, Any]) -> str:
    s = found["scrolled"]
    statuses = ", ".join(f"{count} x {status}" for status, count in sorted(found["statuses"].items()))
    return f"answered {statuses}; {s['pictures']} pictures, {s['broken']} broken, {s['pending']} never loaded"


async def parts(args: argparse.Namespace, env: WorkflowEnvironment, browser: Any, folder: Path) -> list[str]:
    """The parts asked for, in turn; the names of those that failed (each says why, and the others go on)."""
    failed: list[str] = []
    address = address_of(env)

    async def attempt(name: str, part: Any) -> None:
        if name in args.only:
            try:
                await part()
            except Exception as exc:
                failed.append(name)
                print(f"({name}) failed: {exc!r}", flush=True)

    await attempt("a", lambda: runs_section(browser, address, folder, 10, args.runs, args.loads))
    if not set("bc") & set(args.only):
        return failed
    settings = api_settings(address, folder / "default", ATELIER_API_RATE_PER_MINUTE=RATE)
    offline = OfflineProvider(latency_s=LATENCY_S)
    store = LocalStore(settings.artifact_dir)
    async with (
        running_workers(env.client, GuardedProvider(offline, None), store, WORKER_QUEUES),
        serving(settings, env.client) as (base, _),
    ):
        await attempt("b", lambda: live_section(browser, base, env.client, args.live_runs, args.iterations))
        world = (browser, base, env.client, settings, offline, args.characters, args.posts)
        await attempt("c", lambda: world_section(*world))
    return failed


async def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    from playwright.async_api import async_playwright

    namespaces = [f"bench-rows-{count}" for count in (10, args.runs)]
    env = await start_dev_server(
        extra_args=[arg for ns in namespaces for arg in ("--namespace", ns)], dev_server_log_level="error"
    )
    failed = ["setup"]
    try:
        async with contextlib.AsyncExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atelier-bench-studio-")))
            playwright = await stack.enter_async_context(async_playwright())
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            stack.push_async_callback(browser.close)
            print(
                f"Atelier Studio benchmark · {os.cpu_count()} CPUs · {platform.platform()} · Python "
                f"{platform.python_version()} · chromium {browser.version} (headless, Playwright) · offline "
                f"provider, loopback only · the API's per-key limit raised to {RATE:,}/min (default {DEFAULT_RATE}): "
                "requests are counted, not refused",
                flush=True,
            )
            try:
                async with asyncio.timeout(DEADLINE_S - (time.perf_counter() - started)):
                    failed = await parts(args, env, browser, folder)
            except TimeoutError:
                print(f"stopped: the benchmark ran past {DEADLINE_S} s", flush=True)
    finally:
        await env.shutdown()
    print(f"\ntotal {time.perf_counter() - started:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000, help="runs on the big runs page in (a)")
    parser.add_argument("--loads", type=int, default=5, help="loads of each runs page in (a)")
    parser.add_argument("--live-runs", type=int, default=4, help="image runs watched in (b)")
    parser.add_argument("--iterations", type=int, default=8, help="iterations of each watched run in (b)")
    parser.add_argument("--characters", type=int, default=50, help="characters of the world in (c)")
    parser.add_argument("--posts", type=int, default=20, help="posts per character in (c)")
    parser.add_argument("--only", default="abc", help="the parts to run, e.g. `bc`")
    arguments = parser.parse_args()
    if arguments.runs <= 10:
        parser.error("--runs must be more than the small page's 10")
    sys.exit(asyncio.run(main(arguments)))

"""Atelier Studio as the browser tests drive it: one dev server, workers whose offline provider takes a
while per call (so a run is watched while it goes), the API serving the studio, and Debian's chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore
from tests.api_support import api_settings, serving
from tests.conftest import ROOT, address_of, eventually, running_workers

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / ".atelier" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip
LATENCY_S = 0.5  # each offline model call takes this long: a run is watched while it goes
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def playwright_or_skip() -> Any:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs Debian's chromium")
        pytest.skip("chromium is not installed (`apt-get install chromium`)")
    return pytest.importorskip("playwright.async_api")


class Watched:
    """A page whose console errors and failed requests are collected (none is the test's last check)."""

    def __init__(self, page: Any) -> None:
        self.page, self.errors, self.expected = page, [], ()
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def expect_status(self, *statuses: int) -> None:
        """Answers the test provokes (a 422 for bad input): Chromium logs each as a console error."""
        self.expected = tuple(f"status of {s} " for s in statuses)

    def _console(self, message: Any) -> None:
        if message.type == "error" and not any(e in message.text for e in self.expected):
            self.errors.append(f"console: {message.text}")


async def shots(browser: Any, url: str, name: str, cookies: list | None = None) -> None:
    """Screenshots of `url` at desktop and at phone width (`.atelier/screenshots/studio-<name>-…`)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = await browser.new_context(viewport=viewport)
        if cookies:
            await context.add_cookies(cookies)
        page = await context.new_page()
        await page.goto(url)
        await page.wait_for_load_state("networkidle")
        await page.screenshot(path=str(SCREENSHOTS / f"studio-{name}-{label}.png"), full_page=True)
        await context.close()


async def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical accessibility violations on the page, one line each."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def pictures_loaded(page: Any, selector: str = "img") -> list[int]:
    """naturalWidth of every picture the selector finds, once each has settled (0: failed to load)."""

    async def settled() -> list[int] | None:
        widths = await page.eval_on_selector_all(selector, "els => els.map(i => i.complete ? i.naturalWidth : -1)")
        return widths if widths and all(w >= 0 for w in widths) else None

    return await eventually(settled, 30, f"pictures {selector} loaded")


# --- fixtures (a test module imports them: one browser and one studio per module) -------------------


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    playwright = playwright_or_skip()
    async with playwright.async_playwright() as p:
        instance = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        await instance.close()


@pytest.fixture(scope="module")
async def studio(module_dev_env, tmp_path_factory) -> AsyncIterator[tuple[str, Any]]:
    """The keyless API (one local tenant, as on loopback) with workers for every queue."""
    settings = api_settings(address_of(module_dev_env), tmp_path_factory.mktemp("studio"))
    provider = GuardedProvider(OfflineProvider(latency_s=LATENCY_S), None)
    async with (
        running_workers(module_dev_env.client, provider, LocalStore(settings.artifact_dir)),
        serving(settings, module_dev_env.client) as (base, served),
    ):
        yield base, served


@pytest.fixture
async def page(browser) -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport=DESKTOP)
    watched = Watched(await context.new_page())
    yield watched
    await context.close()
    assert not watched.errors, watched.errors


async def checked(watched: Watched) -> None:
    """No serious accessibility violation on the page as it stands."""
    assert not await serious_violations(watched.page), watched.page.url


async def run_status(base: str, run_id: str, key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        return (await client.get(f"/v1/runs/{run_id}")).json()


async def finished(base: str, run_id: str, key: str | None = None) -> dict:
    async def done() -> dict | None:
        run = await run_status(base, run_id, key)
        return run if run["status"] != "running" else None

    return await eventually(done, 90, f"run {run_id} finished")

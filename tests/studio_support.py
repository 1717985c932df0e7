"""Atelier Studio as the browser tests drive it: one dev server, workers whose offline provider takes a
while per call (so a run is watched while it goes), the API serving the studio, and Debian's chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, eventually

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / ".atelier" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip
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

"""Checked in a real browser (Debian's Chromium, driven by Playwright): the Temporal UI shows a
finished run as the user's run (its summary, details, current details and labelled steps; the run list
filtered by pipeline), and the world gallery and the image-run page load every image. Screenshots are
kept under .atelier/screenshots/."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import urllib.parse
from pathlib import Path

import pytest

from tests.conftest import ROOT, address_of, atelier_env, free_port, run_cli, start_dev_server, start_worker

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / ".atelier" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
async def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs Debian's chromium")
        pytest.skip("chromium is not installed (`apt-get install chromium`)")
    playwright = pytest.importorskip("playwright.async_api")
    async with playwright.async_playwright() as p:
        instance = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        await instance.close()


@pytest.fixture(scope="module")
async def ui_server():
    ui_port = free_port()
    env = await start_dev_server(ui=True, ui_port=ui_port)
    yield env, ui_port
    await env.shutdown()


async def images_loaded(page) -> list[int]:
    await page.wait_for_load_state("load")
    return await page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")


async def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def frames_text(page) -> str:
    """The page's text with that of its frames (the UI renders markdown in sandboxed frames)."""
    texts = []
    for frame in page.frames:
        with contextlib.suppress(Exception):
            texts.append(await frame.inner_text("body"))
    return "\n".join(texts)


async def wait_for_text(page, *wanted: str, timeout_s: float = 30) -> str:
    """The page's (and its frames') text once it shows everything `wanted`; fails naming what is missing."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        text = await frames_text(page)
        missing = [w for w in wanted if w not in text]
        if not missing:
            return text
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{page.url} never showed {missing}")
        await page.wait_for_timeout(250)


async def test_ui_gallery_and_image_page_in_a_browser(browser, ui_server, tmp_path):
    server, ui_port = ui_server
    ui = f"http://127.0.0.1:{ui_port}/namespaces/default"
    env = atelier_env(tmp_path, address_of(server))
    worker = start_worker(env, tmp_path / "worker.log")  # up while browsing: current details come from a query
    try:
        image = run_cli(
            "image", "a red lighthouse by the sea", "--max-iterations", "2", "--id", "browser-image", env=env
        )
        world_args = ["--characters", "2", "--posts", "2", "--id", "browser-world", "--out", str(tmp_path / "world")]
        world = run_cli("world", "A village of kite makers", *world_args, env=env)
        assert image.returncode == 0 and world.returncode == 0, image.stderr + world.stderr
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})

        await page.goto(f"{ui}/workflows/browser-image")
        await page.get_by_text("browser-image").first.wait_for(timeout=30_000)
        await page.get_by_text("Completed").first.wait_for(timeout=30_000)
        await wait_for_text(
            page, "generate_image • iteration 1/2 · generate", "evaluate_image • iteration 2/2 · evaluate"
        )
        await shot(page, "temporal-ui-image-run")

        await page.goto(f"{ui}/workflows/browser-world")
        await wait_for_text(page, "describe_world • world · description", " · character of ")
        await shot(page, "temporal-ui-world-timeline")
        await page.get_by_text("User Metadata").first.click()
        await wait_for_text(
            page,
            "world · A village of kite makers",  # static summary
            "posts_per_character",  # static details: the options table
            "characters 2 of 2 · posts 4 of 4",  # current details, answered by the worker
        )
        await shot(page, "temporal-ui-world-metadata")

        await page.goto(f"{ui}/workflows?query=" + urllib.parse.quote('AtelierPipeline = "world"'))
        listed = await wait_for_text(page, "browser-world")
        assert "browser-image" not in listed, "the world filter lists the world, not the image run"
        await shot(page, "temporal-ui-worlds-filter")
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    await page.goto((tmp_path / "world" / "index.html").as_uri())
    loaded = await images_loaded(page)
    assert len(loaded) >= 2 + 2 and all(width > 0 for width in loaded), loaded
    await shot(page, "world-gallery")

    best = Path(json.loads(image.stdout)["best_image_url"])
    await page.goto((best.parent / "index.html").as_uri())
    loaded = await images_loaded(page)
    assert len(loaded) == 2 and all(width > 0 for width in loaded), loaded
    await shot(page, "image-run")
    await page.close()

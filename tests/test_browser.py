"""Checked in a real browser (Debian's Chromium, driven by Playwright): the Temporal UI shows a
finished run, and the world gallery and the image-run page load every image. Screenshots are kept
under .atelier/screenshots/."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from starter.services import dev_server_flags
from tests.conftest import ROOT, TEMPORAL, address_of, atelier_env, free_port, run_cli, start_worker

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
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL),
        dev_server_extra_args=dev_server_flags(),
        data_converter=pydantic_data_converter,
        ui=True,
        ui_port=ui_port,
    )
    yield env, ui_port
    await env.shutdown()


async def images_loaded(page) -> list[int]:
    await page.wait_for_load_state("load")
    return await page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")


async def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def test_ui_gallery_and_image_page_in_a_browser(browser, ui_server, tmp_path):
    server, ui_port = ui_server
    env = atelier_env(tmp_path, address_of(server))
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        image = run_cli(
            "image", "a red lighthouse by the sea", "--max-iterations", "2", "--id", "browser-image", env=env
        )
        world_args = ["--characters", "2", "--posts", "2", "--id", "browser-world", "--out", str(tmp_path / "world")]
        world = run_cli("world", "A village of kite makers", *world_args, env=env)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert image.returncode == 0 and world.returncode == 0, image.stderr + world.stderr
    page = await browser.new_page(viewport={"width": 1400, "height": 900})

    await page.goto(f"http://127.0.0.1:{ui_port}/namespaces/default/workflows/browser-image")
    await page.get_by_text("browser-image").first.wait_for(timeout=30_000)
    await page.get_by_text("Completed").first.wait_for(timeout=30_000)
    await shot(page, "temporal-ui-image-run")

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

"""Atelier Studio in a real browser (Playwright driving Debian's chromium) against a real dev server,
workers and the API: runs are started from the forms, watched while they go, steered, cancelled, started
again and compared; a world fills in live; a chat reply streams into the page; bad input is refused field
by field; knowledge is added, cited and removed. Every page visited is checked for console errors and
serious accessibility violations, and kept as screenshots at desktop and phone width."""

# ruff: noqa: F811 — the fixtures are imported from tests/studio_support.py and taken as arguments
from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from kit.urls import Urls
from tests.conftest import eventually
from tests.studio_support import browser, checked, finished, page, pictures_loaded, run_status, shots, studio  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def run_id_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


async def finished_page(page: Any) -> None:
    """The run page once the run ended (the page reloads itself then: no live part left)."""
    await page.wait_for_selector("#live:not([data-events])", timeout=90_000)


async def test_an_image_run_is_started_watched_steered_started_again_and_compared(
    studio, page, browser, module_dev_env
):
    base, settings = studio
    p = page.page
    await p.goto(f"{base}/new/image")
    await checked(page)
    await p.get_by_label("Prompt").fill("a red lighthouse on a rocky coast at dusk")
    await p.get_by_label("Max iterations").fill("4")
    await p.get_by_label("Threshold").fill("100")
    await p.get_by_role("button", name="Start").click()
    await p.wait_for_url(re.compile(r"/runs/local\.image-"))
    first = run_id_of(p.url)
    assert await p.get_attribute("#live", "data-events"), "a running run's page follows its events"

    # cards appear while the run is going, each with its picture
    await p.wait_for_selector("[data-iteration='1'] img", timeout=60_000)
    await p.get_by_label("Feedback for the next refinement").fill("add a flock of white gulls")
    await p.get_by_role("button", name="Send feedback").click()
    await p.wait_for_selector("[data-iteration='2'] img", timeout=60_000)
    assert (await run_status(base, first))["status"] == "running", "two cards were shown before the run ended"
    assert all(w > 0 for w in await pictures_loaded(p, "[data-iteration] img"))
    await checked(page)

    # the feedback reaches a later iteration's prompt, and is shown with it
    steered = p.locator("[data-iteration]", has=p.locator("[data-prompt]", has_text="add a flock of white gulls"))
    await steered.first.wait_for(timeout=60_000)
    await finished_page(p)
    assert await p.locator("[data-iteration]").count() == 4
    assert await p.locator(".iteration.best").count() == 1
    assert await p.get_attribute("a:has-text('Open in Temporal UI')", "href") == Urls(settings).temporal_ui(first)
    details = await (await module_dev_env.client.get_workflow_handle(first).describe()).static_details()
    assert f"{base}/runs/{first}" in details, "the Temporal UI's details link back to the studio"

    # run again with another setting: the form comes filled in
    await p.get_by_role("link", name="Run again").click()
    assert await p.get_by_label("Prompt").input_value() == "a red lighthouse on a rocky coast at dusk"
    await p.get_by_label("Max iterations").fill("2")
    await p.get_by_role("button", name="Start").click()
    await p.wait_for_url(re.compile(r"/runs/local\.image-"))
    second = run_id_of(p.url)
    assert second != first
    await p.get_by_text("started again from").wait_for()
    await finished_page(p)

    # compare the two from the runs list
    await p.goto(base + "/")
    await p.locator(f"input[name=run][value='{first}']").check()
    await p.locator(f"input[name=run][value='{second}']").check()
    await p.get_by_role("button", name=re.compile("Compare selected")).click()
    await p.wait_for_url(re.compile(r"/compare\?"))
    assert await p.locator("polyline[data-line]").count() == 2
    points = [await p.get_attribute(f"polyline[data-line='{r}']", "points") for r in (first, second)]
    assert [len(pts.split()) for pts in points] == [4, 2], points
    assert await p.locator("tr.differs[data-differs='max_iterations']").count() == 1
    assert await p.locator("tr.differs[data-differs='prompt']").count() == 0
    assert all(w > 0 for w in await pictures_loaded(p, ".compared img"))
    await checked(page)
    for name, path in (("image-run", f"/runs/{first}"), ("compare", p.url.removeprefix(base)), ("runs", "/"),
                       ("new-image", f"/new/image?start_from={first}")):  # fmt: skip
        await shots(browser, base + path, name)


async def test_a_run_is_cancelled_from_its_page(studio, page):
    base, _ = studio
    async with httpx.AsyncClient(base_url=base) as client:
        created = await client.post("/v1/images", json={"prompt": "a slow harbour at night", "max_iterations": 12,
                                                        "threshold": 100})  # fmt: skip
    run_id = created.json()["id"]
    p = page.page
    await p.goto(f"{base}/runs/{run_id}")
    await p.wait_for_selector("[data-iteration='1'] img", timeout=60_000)
    await p.get_by_role("button", name="Cancel").click()
    await finished_page(p)
    await p.get_by_text("Stopped: cancelled").wait_for()
    assert await p.get_by_role("button", name="Cancel").count() == 0
    assert 1 <= await p.locator("[data-iteration]").count() < 12
    assert (await run_status(base, run_id))["state"] == "CANCELLED"


async def test_a_world_fills_in_live_and_every_picture_loads(studio, page, browser):
    base, _ = studio
    p = page.page
    await p.goto(f"{base}/new/world")
    await p.get_by_label("Prompt").fill("A harbour town of lamp lighters")
    await p.get_by_label("Characters", exact=True).fill("2")
    await p.get_by_label("Posts per character").fill("2")
    await p.get_by_role("button", name="Start").click()
    await p.wait_for_url(re.compile(r"/runs/local\.world-"))
    world = run_id_of(p.url)
    await p.wait_for_selector("#live[data-events] [data-character]", timeout=60_000)  # a character, mid-run
    assert (await run_status(base, world))["status"] == "running"
    await p.wait_for_selector("#live[data-events] progress", timeout=10_000)
    await checked(page)
    await finished_page(p)
    assert await p.locator("[data-character]").count() == 2
    assert await p.locator("[data-post]").count() == 4
    widths = await pictures_loaded(p)
    posts_with_pictures = await p.locator("[data-post] img").count()
    assert posts_with_pictures >= 1 and await p.locator("img.avatar").count() == 2
    assert len(widths) == 1 + 2 + posts_with_pictures and all(w > 0 for w in widths), widths  # icon, avatars, posts
    sources = await p.eval_on_selector_all("img", "els => els.map(i => i.getAttribute('src'))")
    assert all("width=" in s for s in sources), "pages show pictures sized down, never the originals"
    assert await p.get_attribute("a[download]", "href") == f"/v1/artifacts/worlds/{world}/manifest.json"
    await checked(page)
    await shots(browser, f"{base}/runs/{world}", "world")


async def test_a_chat_reply_appears_in_pieces_and_equals_the_stored_reply(studio, page, browser):
    base, _ = studio
    p = page.page
    await p.goto(f"{base}/conversations")
    await p.get_by_role("button", name="New conversation").click()
    await p.wait_for_url(re.compile(r"/conversations/local\.conversation-"))
    conversation = run_id_of(p.url)
    await checked(page)
    await p.get_by_label("Message").fill("What do lamp lighters do at dawn?")
    await p.get_by_role("button", name="Send").click()
    reply = p.locator("[data-reply]").last
    seen: set[str] = set()

    async def written() -> bool:
        seen.add(await reply.inner_text())
        return await reply.get_attribute("data-streaming") is None

    await eventually(written, 60, "the reply finished", every=0.02)
    pieces = int(await reply.get_attribute("data-pieces") or 0)
    assert pieces >= 3 and len({s for s in seen if s}) >= 2, (pieces, seen)
    async with httpx.AsyncClient(base_url=base) as client:
        stored = (await client.get(f"/v1/conversations/{conversation}")).json()["recent"][-1]["reply"]
    assert (await reply.inner_text()).strip() == stored.strip()
    await shots(browser, p.url, "chat")


async def test_forms_refuse_bad_input_field_by_field_and_start_nothing(studio, page):
    """Each field shows the API's own message for it (one validation path), and nothing starts."""
    base, _ = studio
    p = page.page
    page.expect_status(422)
    async with httpx.AsyncClient(base_url=base) as client:
        before = len((await client.get("/v1/runs", params={"limit": 100})).json()["runs"])
        bad = {"max_iterations": 0, "threshold": 150, "options": {"format": "jpeg"}}
        answer = (await client.post("/v1/images", json=bad)).json()
    wanted = {e["field"].removeprefix("body."): e["message"] for e in answer["errors"]}
    assert {"prompt", "max_iterations", "threshold"} <= wanted.keys(), wanted
    await p.goto(f"{base}/new/image")
    await p.get_by_label("Prompt").fill("")
    await p.get_by_label("Max iterations").fill("0")
    await p.get_by_label("Threshold").fill("150")
    await p.get_by_label("Format").select_option("jpeg")
    await p.get_by_label("Background").select_option("opaque")
    await p.get_by_role("button", name="Start").click()
    await p.locator("[data-error-for='prompt']").get_by_text(wanted["prompt"]).wait_for()
    for field in ("max_iterations", "threshold"):
        assert await p.locator(f"[data-error-for='{field}']").inner_text() == wanted[field]
        assert await p.get_attribute(f"#f-{field}", "aria-invalid") == "true"
    assert p.url.endswith("/new/image")
    await checked(page)

    await p.goto(f"{base}/new/meme")
    await p.get_by_label("Topic").fill("mondays")
    await p.get_by_label("Target score").fill("2")
    await p.get_by_role("button", name="Start").click()
    await p.locator("[data-error-for='target_score']").get_by_text("1").wait_for()
    assert p.url.endswith("/new/meme")
    async with httpx.AsyncClient(base_url=base) as client:
        assert len((await client.get("/v1/runs", params={"limit": 100})).json()["runs"]) == before


async def test_the_runs_list_shows_sized_down_pictures_filters_and_searches(studio, page):
    base, _ = studio
    async with httpx.AsyncClient(base_url=base) as client:
        ids = [(await client.post("/v1/images", json={"prompt": prompt, "max_iterations": 1})).json()["id"]
               for prompt in ("a blue kite over dunes", "a green kite in rain")]  # fmt: skip
        meme = (await client.post("/v1/memes", json={"topic": "kites on mondays"})).json()["id"]
        for run_id in [*ids, meme]:
            await finished(base, run_id)
    p = page.page
    await p.goto(base + "/")
    for run_id in [*ids, meme]:
        await p.wait_for_selector(f"[data-run='{run_id}'] img")
    widths = await pictures_loaded(p, ".run-row img")
    assert all(0 < w <= 192 for w in widths), widths
    await checked(page)
    await p.get_by_label("Pipeline").select_option("meme")
    await p.get_by_role("button", name="Show").click()
    await p.wait_for_url(re.compile("pipeline=meme"))
    assert await p.locator(f"[data-run='{meme}']").count() == 1
    assert await p.locator(f"[data-run='{ids[0]}']").count() == 0
    await p.goto(base + "/")
    await p.get_by_label("Search prompts").fill("green kite")
    await p.get_by_role("button", name="Show").click()
    await p.wait_for_url(re.compile("q=green"))
    assert [await r.get_attribute("data-run") for r in await p.locator("[data-run]").all()] == [ids[1]]

    await p.goto(f"{base}/runs/{meme}")
    assert all(w > 0 for w in await pictures_loaded(p, ".meme-result img"))
    assert await p.locator(".draft").count() >= 1
    assert await p.locator("[data-cache]").inner_text() in ("hit", "miss", "bypassed")
    await checked(page)
    await shots(page.page.context.browser, f"{base}/runs/{meme}", "meme")


async def test_knowledge_is_added_cited_in_a_reply_and_removed(studio, page, browser):
    base, _ = studio
    p = page.page
    await p.goto(f"{base}/knowledge")
    text = b"The lamp lighters of Varn light every harbour lamp at dusk with long brass poles and whale oil."
    await p.get_by_label("Add text documents").set_input_files(
        files=[{"name": "varn.txt", "mimeType": "text/plain", "buffer": text}]
    )
    await p.get_by_role("button", name="Upload").click()
    doc = p.locator("[data-doc]", has_text="varn.txt")
    await doc.wait_for(timeout=60_000)
    await checked(page)
    await shots(browser, f"{base}/knowledge", "knowledge")

    await p.goto(f"{base}/conversations")
    await p.get_by_role("button", name="New conversation").click()
    await p.wait_for_url(re.compile(r"/conversations/local\.conversation-"))
    await p.get_by_label("Message").fill("When do the lamp lighters of Varn light the harbour lamps?")
    await p.get_by_role("button", name="Send").click()
    citation = p.locator(".citations a", has_text="varn.txt").first
    await citation.wait_for(timeout=60_000)
    await citation.click()
    await p.wait_for_url(re.compile(r"/knowledge/[^/#]+#chunk-\d+$"))
    assert "brass poles" in await p.locator("li:target").inner_text()
    await checked(page)

    await p.goto(f"{base}/knowledge")
    await p.locator("[data-doc]", has_text="varn.txt").get_by_role("button", name="Remove varn.txt").click()
    await p.locator("[data-doc]", has_text="varn.txt").wait_for(state="detached")
    await p.reload()
    assert await p.locator("[data-doc]", has_text="varn.txt").count() == 0

"""A living world in the Studio (Playwright driving Debian's chromium; the real dev server, workers and API): a
finished world's "Live" button starts its life; the life's page fills in as ticks complete, without a reload (its
tick, the actions chart, the follower graph, replies nested under the posts they answer); pause, an injected event,
resume and stop work from the page, and the event reaches the next tick's posts; a character's page lists its
followers, whom it follows and its posts. No console errors, no serious accessibility violations."""

# ruff: noqa: F811 — the fixtures are imported from tests/studio_support.py and taken as arguments
from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import eventually
from tests.studio_support import browser, checked, finished, page, shots, studio  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.browser]

EVENT = "a storm closes the harbour"
WORLD = {"prompt": "A harbour town of lamplighters", "characters": 4, "posts_per_character": 1}


async def tick_shown(p) -> int:
    return int(await p.get_attribute("[data-life-state]", "data-tick"))


async def ticked(p, least: int) -> int | None:
    """The tick the page shows once it is at least `least`."""
    tick = await tick_shown(p)
    return tick if tick >= least else None


async def cleared(p) -> bool | None:
    return await p.input_value("#inject") == "" or None


async def test_a_world_lives_in_its_page_and_is_steered_from_it(studio, page, browser):
    base, _ = studio
    p = page.page
    async with httpx.AsyncClient(base_url=base, timeout=30) as api:
        world = (await api.post("/v1/worlds", json=WORLD | {"images": False, "scoring": False})).json()
    await finished(base, world["id"])

    await p.goto(f"{base}/runs/{world['id']}")
    await checked(page)
    await p.get_by_label("Ticks").fill("300")
    await p.get_by_label("Share of characters active each tick").fill("1")
    await p.get_by_role("button", name="Live").click()
    await p.wait_for_url(re.compile(r"/runs/local\.life-"))
    life_url = p.url
    await p.evaluate("window.stayed = true")  # a reload would forget it: the page must update in place

    await p.wait_for_selector("[data-life-state]", timeout=60_000)
    first = await eventually(lambda: ticked(p, 2), 60, "two ticks shown")
    await eventually(lambda: ticked(p, first + 1), 60, "a later tick shown in place")
    assert await p.evaluate("window.stayed === true"), "the page updated live, not by reloading"
    assert await p.locator("[data-bar]").count() >= 2, "a bar per tick in the chart"
    await p.wait_for_selector("li[data-post] > ol.replies > li[data-reply-to]", timeout=60_000)
    nested = p.locator("li[data-post] > ol.replies > li[data-reply-to]").first
    parent = await nested.evaluate("li => li.parentElement.closest('li[data-post]').dataset.post")
    assert await nested.get_attribute("data-reply-to") == parent, "a reply stands under the post it answers"
    assert await p.locator("svg.graph [data-node]").count() == 4
    await checked(page)

    await p.get_by_role("button", name="Pause").click()
    await p.wait_for_selector("[data-life-state=paused]", timeout=30_000)
    held = await tick_shown(p)
    await p.get_by_label("Inject an event").fill(EVENT)
    await p.get_by_role("button", name="Inject the event").click()
    await eventually(lambda: cleared(p), 10, "the event sent (its box emptied)")
    assert await tick_shown(p) == held, "a paused life does not tick"
    await p.get_by_role("button", name="Resume").click()
    await p.wait_for_selector(f"[data-event]:has-text('{EVENT}')", timeout=30_000)
    reacted = p.locator(f"li[data-post^='{held + 1}:'] > p:has-text('{EVENT}')")
    await reacted.first.wait_for(timeout=60_000)

    await p.get_by_role("button", name="Stop").click()
    await p.wait_for_selector("#live:not([data-events])", timeout=60_000)  # the page reloads once the life ended
    assert await p.get_attribute("[data-life-state]", "data-life-state") == "stopped"
    assert await p.get_by_role("link", name="Run again").count() == 0, "a life starts from its world's page"
    assert await p.get_by_role("link", name="New life").count() == 0
    await checked(page)

    who = p.locator("[data-character] a").first
    username = (await who.text_content()) or ""
    await who.click()
    await p.wait_for_url(re.compile(r"/characters/"))
    assert await p.get_by_role("heading", name=re.compile(r"^Followers \(\d+\)")).count() == 1
    assert await p.get_by_role("heading", name=re.compile(r"^Following \(\d+\)")).count() == 1
    assert await p.locator("[data-post]").count() >= 1, f"{username}'s posts"
    await checked(page)
    await shots(browser, life_url, "life")

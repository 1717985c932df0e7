"""People's verdicts in the Studio, in a real browser (Playwright driving Debian's chromium) against a real dev
server, workers (each offline model its own provider) and the keyless API: the blind queue never puts a model
or variant name in the page's DOM before the vote (nor after: the next pair follows at once), its keys vote A,
B or a tie on the pictures the page shows, its undo takes the last vote back and shows that pair again; stars
and keys 1–5 rate a run page's pictures and Compare's; the leaderboard and the judge's scatter. Every page is
checked for console errors and serious accessibility violations, and kept as screenshots."""

# ruff: noqa: F811 — the fixtures are imported from tests/studio_support.py and taken as arguments
from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from activities.providers import Providers
from kit.storage import LocalStore
from models.catalog import OFFLINE_MODELS, from_settings
from models.settings import EVENTS_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE, Settings
from tests.api_support import api_settings, serving
from tests.conftest import address_of, eventually
from tests.studio_support import browser, checked, page, pictures_loaded, shots  # noqa: F401
from workers.registry import build_workers

pytestmark = [pytest.mark.slow, pytest.mark.browser]

QUEUES = [WORKFLOW_QUEUE, TEXT_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE, EVENTS_QUEUE]
VARIANTS = {"Zephyr-Hand": "offline-vivid", "Quokka-Hand": "offline-sketch", "Plain-Hand": "offline"}
ROWS = ["a red kite over a green hill", "a blue whale under a yellow moon"]
PAIRS = len(ROWS) * 3  # each row's three variants, two at a time
NAMES = [*VARIANTS, *OFFLINE_MODELS]  # nothing of these may be in the queue's page
CELL_RUN = re.compile(
    r"[~_]r\d+-v\d+-k\d+"
)  # nor a cell's run id (in an artifact key too): it has the variant's number


@pytest.fixture(scope="module")
async def studio(module_dev_env, tmp_path_factory) -> AsyncIterator[tuple[str, Settings]]:
    """The keyless API (the local tenant) with workers for every queue but scoring, one provider per model."""
    settings = api_settings(address_of(module_dev_env), tmp_path_factory.mktemp("rating-pages"))
    providers = Providers(from_settings(settings), settings)
    async with contextlib.AsyncExitStack() as stack:
        for worker in build_workers(
            module_dev_env.client, QUEUES, providers, LocalStore(settings.artifact_dir), settings
        ):
            await stack.enter_async_context(worker)
        base, served = await stack.enter_async_context(serving(settings, module_dev_env.client))
        yield base, served


async def ended(client: httpx.AsyncClient, path: str) -> dict:
    async def done() -> dict | None:
        answer = await client.get(path)
        return answer.json() if answer.status_code == 200 and answer.json()["status"] != "running" else None

    return await eventually(done, 120, f"{path} ended", every=0.3)


@pytest.fixture(scope="module")
async def experiment(studio) -> str:
    base, _ = studio
    body = {
        "pipeline": "image",
        "dataset": {"rows": [{"prompt": p} for p in ROWS]},
        "base": {"max_iterations": 1, "technical_weight": 0, "options": {"quality": "low"}},
        "variants": [{"name": name, "set": {"models.image": model}} for name, model in VARIANTS.items()],
    }
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        created = await client.post("/v1/experiments", json=body)
        assert created.status_code == 202, created.text
        view = await ended(client, f"/v1/experiments/{created.json()['id']}")
    assert view["counts"]["completed"] == len(ROWS) * len(VARIANTS), view["counts"]
    return view["id"]


async def votes_of(base: str, experiment_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        return (await client.get("/v1/ratings", params={"experiment": experiment_id})).json()["votes"]


async def blind(p: Any) -> dict[str, str]:
    """The queue's page as it stands: no name anywhere in its DOM; its pair's tokens and its progress."""
    html = await p.content()
    shown = [name for name in NAMES if name.lower() in html.lower()]
    assert not shown, f"the blind page names {shown}"
    assert not CELL_RUN.search(html), "the blind page names a cell's run (and so its variant)"
    queue = p.locator("[data-queue]")
    return {
        "a": await queue.get_attribute("data-a") or "",
        "b": await queue.get_attribute("data-b") or "",
        "progress": await p.get_attribute("#queue-progress", "data-progress") or "",
    }


async def vote_with(p: Any, key: str) -> dict[str, str]:
    async with p.expect_navigation():
        await p.keyboard.press(key)
    await p.wait_for_load_state("load")
    return await blind(p)


async def test_the_blind_queue_names_nothing_before_the_vote_its_keys_vote_and_undo_takes_the_last_back(
    studio, experiment, page, browser
):
    base, _ = studio
    p = page.page
    await p.goto(f"{base}/rate?experiment={experiment}")
    first = await blind(p)
    assert first["progress"] == f"0/{PAIRS}" and first["a"] and first["b"]
    assert all(width > 0 for width in await pictures_loaded(p, ".pair img"))
    assert await p.get_attribute("[data-undo-last]", "disabled") is not None, "nothing to undo yet"
    await checked(page)
    await shots(browser, f"{base}/rate?experiment={experiment}", "rate-pair")

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:  # the page's A is the picture voted as a
        shown_a = (await client.get(f"/rate/pictures/{first['a']}", params={"experiment": experiment})).content
        second = await vote_with(p, "ArrowLeft")
        (voted,) = await votes_of(base, experiment)
        as_a = (await client.get(voted["a"]["url"].removeprefix(base), params={"width": 768})).content
    assert voted["winner"] == "a" and shown_a == as_a
    assert voted["a"]["variant"] != voted["b"]["variant"] and voted["a"]["prompt"] == voted["b"]["prompt"]
    assert second["progress"] == f"1/{PAIRS}" and {second["a"], second["b"]} != {first["a"], first["b"]}

    third = await vote_with(p, "ArrowRight")
    assert third["progress"] == f"2/{PAIRS}"
    await vote_with(p, "ArrowDown")
    assert sorted(v["winner"] for v in await votes_of(base, experiment)) == ["a", "b", "tie"]

    async with p.expect_navigation():
        await p.get_by_role("button", name=re.compile("Undo last vote")).click()
    undone = await blind(p)
    assert (undone["a"], undone["b"]) == (third["a"], third["b"]), "the undone pair comes back, sides as they were"
    assert undone["progress"] == f"2/{PAIRS}"
    assert sorted(v["winner"] for v in await votes_of(base, experiment)) == ["a", "b"]
    await checked(page)

    for _ in range(PAIRS - 2):
        last = await vote_with(p, "ArrowLeft")
    assert last["progress"] == f"{PAIRS}/{PAIRS}" and last["a"] == "" and len(await votes_of(base, experiment)) == PAIRS
    await p.get_by_text("Every pair is voted on.").wait_for()
    await shots(browser, f"{base}/rate?experiment={experiment}", "rate-queue")


async def test_stars_and_keys_rate_a_run_pages_pictures_a_meme_and_compares(studio, page):
    base, _ = studio
    p = page.page
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        runs = []
        for model in ("offline", "offline-vivid"):
            body = {"prompt": "a yellow lamp on a red table", "max_iterations": 2, "threshold": 100}
            created = await client.post("/v1/images", json=body | {"models": {"image": model}})
            assert created.status_code == 202, created.text
            runs.append(created.json()["id"])
        meme = await client.post("/v1/memes", json={"topic": "lamps that judge you", "format": "drake"})
        assert meme.status_code == 202, meme.text
        for run_id in [*runs, meme.json()["id"]]:
            await ended(client, f"/v1/runs/{run_id}")

    await p.goto(f"{base}/runs/{runs[0]}")
    await p.focus("[data-iteration='1'] [data-stars='1']")
    await p.keyboard.press("4")
    await p.locator("[data-iteration='1'] [data-rated]").filter(has_text="rated 4 of 5").wait_for()
    await p.locator("[data-iteration='2'] [data-stars='2']").click()
    await p.locator("[data-iteration='2'] [data-rated]").filter(has_text="rated 2 of 5").wait_for()
    await checked(page)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        given = (await client.get("/v1/ratings", params={"run": runs[0]})).json()["ratings"]
    assert sorted((r["artifact"].rsplit("/", 1)[-1], r["stars"]) for r in given) == [
        ("iteration-01.png", 4),
        ("iteration-02.png", 2),
    ]
    await p.reload()
    assert await p.get_attribute("[data-iteration='1'] [data-stars='4']", "aria-pressed") == "true", "kept"
    assert await p.locator("[data-iteration='1'] .star.on").count() == 4

    await p.goto(f"{base}/runs/{meme.json()['id']}")
    await p.locator("[data-rate] [data-stars='3']").click()
    await p.locator("[data-rate] [data-rated]").filter(has_text="rated 3 of 5").wait_for()

    await p.goto(f"{base}/compare?run={runs[0]}&run={runs[1]}")
    second = p.locator(f"[data-compared='{runs[1]}'] [data-rate]")
    await second.locator("[data-stars='5']").click()
    await second.locator("[data-rated]").filter(has_text="rated 5 of 5").wait_for()
    assert await p.locator("[data-compared] [data-rate]").count() == 2
    await checked(page)


async def test_the_leaderboard_and_the_judge_pages_show_what_people_said(studio, experiment, page, browser):
    base, _ = studio
    p = page.page
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        view = (await client.get(f"/v1/experiments/{experiment}")).json()
        for cell in view["outcomes"]:
            stars = 1 + round(cell["score"] / 25)
            rated = await client.post("/v1/ratings", json={"artifact": cell["picture"], "stars": min(stars, 5)})
            assert rated.status_code == 201, rated.text
        board = (await client.get("/v1/leaderboard", params={"experiment": experiment})).json()
        judged = (await client.get("/v1/judge", params={"experiment": experiment})).json()

    await p.goto(f"{base}/leaderboard?experiment={experiment}")
    names = [await row.get_attribute("data-entry") for row in await p.locator("[data-entry]").all()]
    assert names == [e["name"] for e in board["entries"]] and set(names) == set(VARIANTS)
    await checked(page)
    await p.goto(f"{base}/judge?experiment={experiment}")
    (evaluator,) = judged["evaluators"]
    assert await p.locator("[data-evaluator='offline'] svg.scatter circle").count() == len(evaluator["points"])
    assert sum(point["count"] for point in evaluator["points"]) == len(view["outcomes"])
    await checked(page)
    await p.goto(f"{base}/leaderboard")
    assert await p.locator("[data-entry]").count() >= 1
    for name, path in (("leaderboard", f"/leaderboard?experiment={experiment}"), ("judge", "/judge")):
        await shots(browser, base + path, name)

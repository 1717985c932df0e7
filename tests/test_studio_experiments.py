"""The Studio's experiment page (#43). Without a browser: the page as rendered from an experiment's view (the real
report code and templates) — blind mode renders no variant or model name, setting, run link or artifact address,
its shuffle is stable and secret-seeded, rows sort by their difference to the baseline and "regressions only"
hides the rest, a live page's part holds the rows that changed, and a matrix's cells lay out as a grid. In
chromium (Playwright) against a real dev server, workers and the API: an experiment of three rows × the three
offline models fills in while it runs, hides every name in blind mode until revealed, sorts and filters, shows
in the runs list with its cells under it, and opens in Compare as a grid; no console errors, no serious
accessibility violations."""

# ruff: noqa: F811 — the fixtures are imported from tests/studio_support.py and taken as arguments
from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from activities.providers import Providers
from kit.experiment_report import build_report
from kit.storage import LocalStore
from kit.urls import Urls
from models.catalog import from_settings
from models.experiment import CellOutcome, ReportRequest
from models.experiment_api import CellView, ExperimentView
from models.settings import SCORING_QUEUE, Settings
from starter.studio.access import templates
from starter.studio.compare import matrix_grid
from starter.studio.experiment_grid import blind_order, changed_rows, experiment_grid
from tests.api_support import api_settings, serving
from tests.conftest import address_of, running_workers
from tests.studio_support import LATENCY_S, browser, checked, page, pictures_loaded, shots  # noqa: F401
from workers.registry import QUEUES

ID = "local.experiment-0123456789abcdef"
VARIANTS = ["steady", "bright", "pencil"]
MODELS = ["offline", "offline-vivid", "offline-sketch"]
SETTINGS = [{"models.image": model} for model in MODELS]
LABELS = ["a red fox on a blue hill", "a green owl by a yellow lake", "a blue kite over a red barn"]
# (row, variant) → score per repeat: row 0 gains under both, row 1 drops under "pencil", row 2 under both
SCORES = {(0, 0): [50, 50], (0, 1): [70, 72], (0, 2): [55, 56], (1, 0): [60, 61], (1, 1): [66, 65],
          (1, 2): [30, 32], (2, 0): [80, 80], (2, 1): [70, 71], (2, 2): [40, 40]}  # fmt: skip
NAMES = (*VARIANTS, "offline", "vivid", "sketch")


def view_of(scores: dict[tuple[int, int], list[float]], running: tuple[int, int] | None = None) -> ExperimentView:
    """An experiment's view as the API builds it (its report by the real report code)."""
    urls, outcomes = Urls(), []
    for (row, variant), values in scores.items():
        for k, value in enumerate(values):
            child = f"{ID}~r{row}-v{variant}-k{k}-a1"
            done = {"status": "completed", "score": value, "passed": value >= 60, "cost_usd": 0.001, "tokens": 20}
            where = {"cell": (row * 3 + variant) * 2 + k, "row": row, "variant": variant, "repeat": k}
            ran = {"seconds": 1.2, "child_id": child, "picture": f"runs/{child}/iteration-01.png"}
            outcomes.append(CellOutcome(**where, **done, **ran, order=len(outcomes) + 1))
    if running is not None:
        row, variant = running
        outcomes.append(CellOutcome(cell=(row * 3 + variant) * 2, row=row, variant=variant, status="running"))
    request = ReportRequest(experiment_id=ID, pipeline="image", variants=VARIANTS, labels=LABELS, repeat=2,
                            outcomes=outcomes)  # fmt: skip
    cells = [CellView(**o.model_dump(), variant_name=VARIANTS[o.variant]) for o in outcomes]
    finished = sum(1 for o in outcomes if o.status == "completed")
    counts = {"pending": 18 - len(outcomes), "running": len(outcomes) - finished, "completed": finished}
    return ExperimentView(
        id=ID, status="running", state="running", pipeline="image", variants=VARIANTS, baseline="steady", rows=3,
        repeat=2, cells=18, counts=counts, spent_usd=0.0, reserved_usd=0.0, max_cost_usd=None, labels=LABELS,
        outcomes=cells, report=build_report(request), started_at=datetime.now(UTC), urls=urls.experiment_urls(ID),
    )  # fmt: skip


def rendered(mode: str = "named", sort: str = "order", regressions: bool = False, **more) -> tuple[object, str]:
    grid = experiment_grid(view_of(SCORES, **more), SETTINGS, Urls(), "server secret", mode, sort, regressions)
    html = templates.get_template("experiment.html").render(grid=grid, experiment_id=ID, after=0, viewer=None, csrf="")
    return grid, html


def row_order(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="row-(\d+)"', html)]


def test_blind_mode_renders_no_name_setting_run_or_artifact_address_until_revealed():
    grid, html = rendered("blind")
    lower = html.lower()
    assert not [name for name in NAMES if name in lower], "blind mode rendered a variant or model name"
    assert "~r" not in html and "/runs/" not in html and "/v1/artifacts/" not in html, "a cell's run shows"
    assert "report.csv" not in html, "the exports name the variants"
    headers = re.findall(r'data-column="([A-Z])">([^<]*)<', html)
    assert [(letter, text.strip()) for letter, text in headers] == [("A", "A"), ("B", "B"), ("C", "C")]
    assert len(re.findall(r'<img src="/experiments/[^"]+/pictures/[0-9a-f]{24}"', html)) == 18
    assert len(grid.pictures) == 18 and all(key.startswith(f"runs/{ID}~r") for key in grid.pictures.values())

    order = blind_order("server secret", ID, 3)
    _, revealed = rendered("revealed")
    shown = [text.split("<")[0].strip() for _, text in re.findall(r'data-column="([A-Z])">([^\n]*)', revealed)]
    assert shown == [f"{'ABC'[n]} · {VARIANTS[v]}" for n, v in enumerate(order)], "revealed in blind mode's order"
    assert "offline-vivid" in revealed and f"/runs/{ID}~r0-v1-k0-a1" in revealed


def test_the_blind_shuffle_is_stable_seeded_by_the_secret_and_not_always_the_variants_order():
    ids = [f"local.experiment-{n:016x}" for n in range(24)]
    orders = [blind_order("s1", i, 3) for i in ids]
    assert orders == [blind_order("s1", i, 3) for i in ids], "the same order on every load"
    assert all(sorted(o) == [0, 1, 2] for o in orders)
    assert len({tuple(o) for o in orders}) > 1 and any(o != [0, 1, 2] for o in orders)
    assert [blind_order("s2", i, 3) for i in ids] != orders, "another server's secret shuffles otherwise"


def test_rows_sort_by_their_difference_to_the_baseline_and_regressions_only_hides_the_rest():
    # the rows' largest drops: row 0 +5.5 (no drop), row 1 −29.5, row 2 −40; largest gains: +21, +5, −9.5
    _, html = rendered(sort="order")
    assert row_order(html) == [0, 1, 2]
    assert row_order(rendered(sort="worst")[1]) == [2, 1, 0]
    assert row_order(rendered(sort="best")[1]) == [0, 1, 2]
    assert 'data-low="-40.0"' in html and 'data-high="21.0"' in html
    assert re.search(r'<tr id="row-2"[^>]*data-regression', html)
    assert not re.search(r'<tr id="row-0"[^>]*data-regression', html)

    _, filtered = rendered(regressions=True)
    hidden = re.findall(r'<tr id="row-(\d+)"[^>]*\bhidden>', filtered)
    assert hidden == ["0"] and row_order(filtered) == [0, 1, 2], "hidden, not dropped: the page can show it again"
    assert "Δ -29.5 regression" in html, "a named page marks the regressing cells"


def test_a_live_pages_part_holds_the_rows_that_changed_the_counts_and_the_report():
    grid = experiment_grid(view_of(SCORES, running=None), SETTINGS, Urls(), "s", "blind")
    assert grid.since == 18
    assert [row.index for row in changed_rows(grid, 14)] == [2]  # cells 15–18 finished: row 2's
    assert changed_rows(grid, 18) == []
    partial = dict(itertools.islice(SCORES.items(), 6))
    grid = experiment_grid(view_of(partial, running=(2, 0)), SETTINGS, Urls(), "s", "blind")
    moving = changed_rows(grid, grid.since)
    html = templates.get_template("experiment_part.html").render(grid=grid, rows=moving)
    assert [row.index for row in moving] == [2], "a running cell's row is sent"
    assert f'data-since="{grid.since}"' in html and 'id="experiment-counts"' in html and 'id="report"' in html
    assert "running" in html and not [name for name in NAMES if name in html.lower()]


def test_a_matrix_lays_out_across_its_first_varied_setting_and_down_the_others():
    variants = [f"models.image={m},threshold={t}" for m, t in itertools.product(MODELS[:2], (80, 90))]
    settings = [{"models": {"image": m}, "threshold": t} for m, t in itertools.product(MODELS[:2], (80, 90))]
    urls, cells = Urls(), []
    for v in range(4):
        cells.append(CellView(cell=v, row=0, variant=v, status="completed", score=50 + v, variant_name=variants[v]))
    view = view_of({}).model_copy(update={"variants": variants, "labels": ["one prompt"], "outcomes": cells})
    laid = matrix_grid(view, settings)
    assert (laid.across, laid.values, laid.down) == ("models.image", ["offline", "offline-vivid"], ["threshold"])
    assert laid.lines == [(["80"], [0, 2]), (["90"], [1, 3])]
    assert laid.best == 53 and [c.variant for c in laid.rows[0][2][3]] == [3]
    html = templates.get_template("compare_grid.html").render(view=view, matrix=laid, viewer=None, csrf="")
    assert html.count("<figure") == 4 and "models.image = offline-vivid" in html and "threshold = 90" in html
    assert urls.experiment_page(ID, "compare") == f"/experiments/{ID}/compare"


# --- in chromium ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def studio(module_dev_env, tmp_path_factory) -> AsyncIterator[tuple[str, Settings]]:
    """The keyless API with a worker's providers, one per offline model (so the three draw and score apart),
    each call taking LATENCY_S (an experiment is watched while it goes); no scoring worker (torch)."""
    settings = api_settings(address_of(module_dev_env), tmp_path_factory.mktemp("studio"))
    settings = settings.model_copy(update={"offline_latency_s": LATENCY_S})
    providers = Providers(from_settings(settings), settings)
    queues = [queue for queue in QUEUES if queue != SCORING_QUEUE]
    store = LocalStore(settings.artifact_dir)
    async with (
        running_workers(module_dev_env.client, providers, store, queues, settings),
        serving(settings, module_dev_env.client) as served,
    ):
        yield served


FAST = {"max_iterations": 1, "technical_weight": 0, "options": {"quality": "low", "size": "1024x1024"}}


def experiment_body() -> dict:
    """Three rows × the three offline models, twice each. Row 0 asks for the sketching model itself, so under
    the baseline (which sets no model) it is sketched too: it does not regress, the other rows do (the sketch
    draws less of the prompt and scores below the plain model)."""
    rows = [{"prompt": LABELS[0], "models": {"image": "offline-sketch"}}, {"prompt": LABELS[1]}, {"prompt": LABELS[2]}]
    return {
        "pipeline": "image",
        "dataset": {"rows": rows},
        "base": FAST | {"threshold": 60},
        "variants": [
            {"name": "steady", "set": {}},
            {"name": "bright", "set": {"models.image": "offline-vivid"}},
            {"name": "pencil", "set": {"models.image": "offline-sketch"}},
        ],
        "baseline": "steady",
        "repeat": 2,
        "max_parallel": 2,
    }


async def finished_cells(p) -> int:
    return await p.locator("#experiment .cell.completed").count()


@pytest.mark.slow
@pytest.mark.browser
async def test_an_experiment_fills_in_live_hides_names_blind_sorts_filters_and_is_listed_with_its_cells(
    studio, page, browser
):
    base, _ = studio
    p = page.page
    async with httpx.AsyncClient(base_url=base, timeout=30) as api:
        created = await api.post("/v1/experiments", json=experiment_body())
        assert created.status_code == 202, created.text
        experiment = created.json()["id"]

        # blind mode while it runs: cells appear as they finish, no name is anywhere in the page
        await p.goto(f"{base}/experiments/{experiment}?mode=blind")
        await p.wait_for_selector("#experiment[data-events]")
        at_load = await finished_cells(p)
        await p.locator("#experiment .cell.completed").nth(at_load).wait_for(timeout=90_000)  # one more
        await p.wait_for_selector("body[data-last-event]")  # drawn on the experiment's event
        assert (await api.get(f"/v1/experiments/{experiment}")).json()["status"] == "running", "it filled in live"
        content = (await p.content()).lower()
        assert not [name for name in NAMES if name in content], "a name in blind mode's page"
        assert [await h.inner_text() for h in await p.locator("thead th[data-column]").all()] == ["A", "B", "C"]
        await checked(page)

        # it ends: the page reloads itself with the whole report; still blind
        await p.wait_for_selector("#experiment:not([data-events])", timeout=120_000)
        assert await finished_cells(p) == 18
        assert all(w > 0 for w in await pictures_loaded(p, "#experiment img"))
        content = (await p.content()).lower()
        assert not [name for name in NAMES if name in content], "a name in blind mode's finished page"
        picture = await p.locator("#experiment img").first.get_attribute("src")
        answer = await api.get(picture, cookies=dict((c["name"], c["value"]) for c in await p.context.cookies()))
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/webp", answer.headers
        assert experiment.split(".")[-1] not in str(answer.headers), "no cell's address (its variant) in the answer"
        blind_scores = await p.locator("#row-1 td .s").all_inner_texts()

        # revealed: the names, in blind mode's order
        await p.get_by_role("link", name="Reveal the names").click()
        await p.wait_for_url(re.compile(r"mode=revealed"))
        headers = [await h.inner_text() for h in await p.locator("thead th[data-column]").all()]
        assert sorted(h.split(" · ")[1].split()[0] for h in headers) == sorted(VARIANTS), headers
        assert await p.locator("#row-1 td .s").all_inner_texts() == blind_scores, "the same cells under each letter"
        await checked(page)

        # sorted by the largest drop, then regressions only (row 0 does not regress: it is sketched under both)
        rows = p.locator("#experiment tbody tr")
        await p.get_by_label("Sort rows").select_option("worst")
        lows = [float(v) for v in await rows.evaluate_all("rs => rs.map(r => r.dataset.low)")]
        assert lows == sorted(lows) and await rows.first.get_attribute("id") != "row-0", lows
        assert await rows.last.get_attribute("id") == "row-0"
        await p.get_by_label("Regressions only").check()
        assert await p.locator("#experiment tbody tr:visible").count() == 2
        assert await p.locator("#row-0").is_hidden()
        assert "sort=worst" in p.url and "regressions=true" in p.url

        # the runs list: the experiment, its cells under it when opened; a cell's page links back
        await p.goto(base + "/")
        row = p.locator(f"[data-run='{experiment}']")
        await row.get_by_text("18 cells").click()
        cell_links = row.locator("[data-children-list] a[href^='/runs/']")
        await cell_links.first.wait_for()
        assert await cell_links.count() == 18
        await checked(page)
        two = [(await link.get_attribute("href")).rsplit("/", 1)[1] for link in await cell_links.all()][:2]
        await cell_links.first.click()
        await p.get_by_role("link", name=f"experiment {experiment}").wait_for()

        # Compare: two of its cells side by side lead to all of them as a grid, across what the variants vary
        await p.goto(f"{base}/compare?run={two[0]}&run={two[1]}")
        await p.get_by_role("link", name="compare all its cells as a grid").click()
        await p.wait_for_url(f"{base}/experiments/{experiment}/compare")
        assert await p.locator("figure.matrix-cell").count() == 18
        assert "models.image = offline-vivid" in await p.content()
        assert all(w > 0 for w in await pictures_loaded(p, "figure img"))
        await checked(page)
    await shots(browser, f"{base}/experiments/{experiment}", "experiment")


@pytest.mark.slow
@pytest.mark.browser
async def test_the_cancel_button_stops_a_running_experiment(studio, page):
    base, _ = studio
    p = page.page
    async with httpx.AsyncClient(base_url=base, timeout=30) as api:
        created = await api.post("/v1/experiments", json=experiment_body() | {"max_parallel": 1})
        experiment = created.json()["id"]
        await p.goto(f"{base}/experiments/{experiment}")
        await p.get_by_role("button", name="Cancel").click()
        await p.wait_for_selector("#experiment:not([data-events])", timeout=60_000)  # it reloads once it ended
        view = (await api.get(f"/v1/experiments/{experiment}")).json()
    assert view["state"] == "cancelled" and view["counts"]["cancelled"] > 0, view["counts"]
    assert await p.get_by_role("button", name="Cancel").count() == 0
    assert "cancelled" in await p.locator("#experiment-counts").inner_text()


@pytest.mark.slow
@pytest.mark.browser
async def test_a_pages_unknown_experiment_is_a_404_page(studio, page):
    base, _ = studio
    page.expect_status(404)
    answer = await page.page.goto(f"{base}/experiments/local.experiment-nothing-here")
    assert answer.status == 404
    assert await page.page.get_by_text("no experiment").count() == 1

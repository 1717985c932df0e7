"""Experiments (#43 items 3–5) on a real dev server and workers with the offline provider's three models, through
the HTTP API (real uvicorn) and the CLI: the report against an independent computation, the event stream, the
matrix, datasets, cancel, a bad cell refused before anything starts, and the runs list."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator

import numpy as np
import pytest
from scipy import stats as scipy_stats

from activities.providers import Providers
from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore
from models.catalog import from_settings
from models.experiment import ExperimentPlan, PlannedVariant
from models.settings import WORKFLOW_QUEUE, Settings
from models.usage import CostLimit, Price
from models.workflow_interfaces import ExperimentWorkflow
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of, atelier_env, cli_main, each_run, eventually, running_workers
from tests.test_image_workflow import openai_provider

pytestmark = pytest.mark.slow  # a dev server, workers and uvicorn

MODELS = ("offline", "offline-vivid", "offline-sketch")
FAST = {"max_iterations": 1, "technical_weight": 0, "options": {"quality": "low", "size": "1024x1024"}}
SUBJECTS = ["fox", "lighthouse", "teapot", "owl", "bicycle", "cactus", "violin", "whale", "castle", "kite"]
COLOURS = ["red", "blue", "green", "yellow"]


def prompts(count: int) -> list[str]:
    return [f"a {COLOURS[n % 4]} {SUBJECTS[n % 10]} on a {COLOURS[(n + 1) % 4]} hill, scene {n}" for n in range(count)]


@pytest.fixture(scope="module")
async def api(module_dev_env, tmp_path_factory) -> AsyncIterator[tuple[str, Settings]]:
    """The keyless API on one dev server with workers for every queue but scoring (offline provider)."""
    data = tmp_path_factory.mktemp("experiments")
    settings = api_settings(address_of(module_dev_env), data)
    queues = ["atelier-workflows", "atelier-text", "atelier-images", "atelier-storage", "atelier-events"]
    providers = Providers(from_settings(settings), settings)  # the three offline models, each its own hand
    async with (
        running_workers(module_dev_env.client, providers, LocalStore(settings.artifact_dir), queues),
        serving(settings, module_dev_env.client) as served,
    ):
        yield served


async def ended(client, experiment_id: str, timeout: float = 120) -> dict:
    async def done() -> dict | None:
        answer = await client.get(f"/v1/experiments/{experiment_id}")
        view = answer.json() if answer.status_code == 200 else None
        return view if view and view["status"] != "running" else None

    return await eventually(done, timeout, f"experiment {experiment_id} ended", every=0.5)


def reference_interval(values: list[float], seed_name: str, resamples: int = 2000) -> tuple[float, float, float]:
    """The documented method written out independently: multinomial resample counts from numpy's default_rng
    seeded with crc32 of the statistic's name, the mean of each resample, the 2.5th and 97.5th percentiles."""
    x = np.asarray(values, dtype=float)
    rng = np.random.default_rng(zlib.crc32(seed_name.encode()))
    counts = rng.multinomial(len(x), np.full(len(x), 1 / len(x)), size=resamples)
    means = counts @ x / len(x)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(x.mean()), float(low), float(high)


async def events_of(client, url: str) -> list[dict]:
    events, kind = [], None
    async with client.stream("GET", url) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append({"type": kind, **json.loads(line.removeprefix("data: "))})
    return events


async def test_a_20_row_3_model_experiment_reports_what_a_reference_computation_finds(api):
    base_url, _ = api
    rows = [{"prompt": text} for text in prompts(20)]
    body = {
        "pipeline": "image",
        "dataset": {"rows": rows},
        "base": FAST | {"threshold": 60},
        "variants": [{"name": model, "set": {"models.image": model}} for model in MODELS],
        "baseline": "offline",
        "max_parallel": 8,
    }
    async with http(base_url) as client:
        created = await client.post("/v1/experiments", json=body)
        assert created.status_code == 202, created.text
        experiment = created.json()
        assert experiment["cells"] == 60 and created.headers["location"] == experiment["urls"]["run"]
        view = await ended(client, experiment["id"])
        report = (await client.get(experiment["urls"]["result"])).json()
        exported = (await client.get(experiment["urls"]["report_csv"])).text
        lines = (await client.get(experiment["urls"]["report_jsonl"])).text.splitlines()
        events = await events_of(client, experiment["urls"]["events"])
        listed = (await client.get("/v1/runs", params={"limit": 100})).json()["runs"]
        cell_run = (await client.get(view["outcomes"][0]["run_url"].removeprefix(base_url))).json()

    assert view["state"] == "completed" and view["counts"]["completed"] == 60, view["counts"]
    assert report == view["report"], "the stored report is the one the view shows"
    scores: dict[str, dict[int, float]] = defaultdict(dict)
    for cell in view["outcomes"]:
        scores[cell["variant_name"]][cell["row"]] = cell["score"]
        assert cell["child_id"].endswith(f"~r{cell['row']}-v{cell['variant']}-k0-a1")
    for summary in report["variants"]:
        values = [scores[summary["name"]][row] for row in range(20)]
        mean, low, high = reference_interval(values, f"score:{summary['name']}")
        assert summary["score"]["mean"] == pytest.approx(mean, abs=1e-9)
        assert (summary["score"]["low"], summary["score"]["high"]) == pytest.approx((low, high), abs=1e-9)
        assert summary["pass_rate"] == pytest.approx(np.mean(np.asarray(values) >= 60))
        seconds = [c["seconds"] for c in view["outcomes"] if c["variant_name"] == summary["name"]]
        assert summary["seconds_p50"] == pytest.approx(np.percentile(seconds, 50), abs=1e-3)
        assert summary["seconds_p95"] == pytest.approx(np.percentile(seconds, 95), abs=1e-3)
        if np.std(values) > 0:  # scipy's percentile bootstrap (another generator): the same interval, within noise
            theirs = scipy_stats.bootstrap((values,), np.mean, n_resamples=20000, method="percentile", random_state=1)
            spread = np.std(values) / np.sqrt(len(values))
            assert abs(theirs.confidence_interval.low - low) < spread / 2
            assert abs(theirs.confidence_interval.high - high) < spread / 2
    means = {name: np.mean(list(by_row.values())) for name, by_row in scores.items()}
    assert means["offline-vivid"] > means["offline"] > means["offline-sketch"], means
    for comparison in report["comparisons"]:
        name = comparison["variant"]
        differences = [scores[name][row] - scores["offline"][row] for row in range(20)]
        mean, low, high = reference_interval(differences, f"diff:{name}")
        found = comparison["difference"]
        assert (found["mean"], found["low"], found["high"]) == pytest.approx((mean, low, high), abs=1e-9)
        assert comparison["regression"] == (high < 0)
    assert {c["variant"]: c["regression"] for c in report["comparisons"]} == {
        "offline-vivid": False,
        "offline-sketch": True,
    }
    assert len(report["rows"]) == 40 and all(r["difference"]["low"] is None for r in report["rows"]), "one pair"

    records = list(csv.DictReader(io.StringIO(exported)))
    assert len(records) == 60 == len(lines) and {r["status"] for r in records} == {"completed"}
    assert [json.loads(line)["score"] for line in lines] == [float(r["score"]) for r in records]

    kinds = [event["type"] for event in events]
    assert kinds[0] == "run.started" and kinds[-2:] == ["experiment.completed", "run.completed"]
    cells = [event["data"]["cell"] for event in events if event["type"] == "experiment.cell.completed"]
    assert sorted((c["row"], c["variant"]) for c in cells) == [(r, v) for r in range(20) for v in range(3)]
    assert events[-2]["data"]["counts"]["completed"] == 60

    mine = [run for run in listed if run["id"] == experiment["id"]]
    assert mine and mine[0]["pipeline"] == "experiment" and mine[0]["urls"]["run"] == experiment["urls"]["run"]
    assert not any("~r" in run["id"] for run in listed), "cells are listed under their experiment, not beside it"
    assert cell_run["pipeline"] == "image" and cell_run["status"] == "completed"


async def test_a_bad_variant_or_row_is_refused_naming_its_field_and_nothing_starts(api, module_dev_env, tmp_path):
    base_url, _ = api
    rows = [{"prompt": text} for text in prompts(5)]
    good = {"pipeline": "image", "dataset": {"rows": rows}, "base": FAST, "variants": [{"name": "a"}, {"name": "b"}]}
    cases = {
        "body.variants[1].set.threshold": {"variants": [{"name": "a"}, {"name": "b", "set": {"threshold": 200}}]},
        "body.dataset.rows[3].prompt": {"dataset": {"rows": [*rows[:3], {"id": "no prompt"}, rows[4]]}},
        "body.dataset.rows[2].colour": {"dataset": {"rows": [*rows[:2], {"prompt": "x", "colour": "red"}]}},
        "body.variants[0].set.models.image": {"variants": [{"name": "a", "set": {"models.image": "no-such-model"}}]},
        "body.base.max_iterations": {"base": FAST | {"max_iterations": 0}},
        "body.baseline": {"baseline": "c"},
        "body.variants": {"variants": [{"name": "a"}, {"name": "a"}]},
        "body.dataset.id": {"dataset": {"id": "ds-0000000000000000"}},
    }
    async with http(base_url) as client:
        for field, change in cases.items():
            answer = await client.post("/v1/experiments", json=good | change)
            assert answer.status_code == 422, (field, answer.text)
            assert answer.json()["errors"][0]["field"] == field, (field, answer.json())
    started = [run.id async for run in module_dev_env.client.list_workflows('WorkflowType = "ExperimentWorkflow"')]
    before = set(started)

    dataset = tmp_path / "rows.jsonl"
    dataset.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    env = atelier_env(tmp_path, address_of(module_dev_env))
    for args, said in (
        (("--variant", "a:threshold=10", "--variant", "b:threshold=200"), "--variant b: threshold: must be between"),
        (("--variant", "a:colour=red"), "--variant a: colour: not a field"),
        (("--variant", "a", "--base", "max_iterations=0"), "--base max_iterations: must be between 1 and 20"),
        (("--variant", "a:models.image=no-such-model"), "--variant a: models.image: unknown model"),
        (("--variant", "threshold=10"), "--variant 'threshold=10': expected NAME[:PATH=VALUE"),
    ):
        done = cli_main("experiment", str(dataset), *args, env=env)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert said in done.stderr, done.stderr
    bad_rows = tmp_path / "bad.jsonl"
    bad_rows.write_text('{"prompt": "a fox"}\n{"prompt": \n')
    done = cli_main("experiment", str(bad_rows), "--variant", "a:threshold=10", env=env)
    assert done.returncode == 2 and "line 2: not JSON" in done.stderr, done.stderr
    after = {run.id async for run in module_dev_env.client.list_workflows('WorkflowType = "ExperimentWorkflow"')}
    assert after == before, "nothing started"


async def test_a_matrix_is_one_experiment_of_the_cartesian_product_through_the_api_and_the_cli(
    api, module_dev_env, tmp_path
):
    base_url, settings = api
    body = {"prompt": "a blue owl on a red hill"} | FAST | {"repeat": 2}
    body["vary"] = {"models.image": ["offline", "offline-vivid"], "threshold": [40, 90]}
    async with http(base_url) as client:
        created = await client.post("/v1/images", json=body)
        assert created.status_code == 202, created.text
        matrix = created.json()
        assert matrix["pipeline"] == "image" and matrix["urls"]["run"].endswith(f"/v1/experiments/{matrix['id']}")
        view = await ended(client, matrix["id"])
        bad = await client.post("/v1/images", json=body | {"vary": {"threshold": [40, 200]}})
    assert view["cells"] == 8 and view["counts"]["completed"] == 8 and view["repeat"] == 2
    assert sorted(view["variants"]) == sorted(
        f"models.image={model},threshold={mark}" for model in ("offline", "offline-vivid") for mark in (40, 90)
    )
    assert {(c["variant"], c["repeat"]) for c in view["outcomes"]} == {(v, k) for v in range(4) for k in range(2)}
    assert all(c["passed"] == (c["score"] >= (40 if "=40" in c["variant_name"] else 90)) for c in view["outcomes"])
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.vary.threshold", bad.text

    env = atelier_env(tmp_path, address_of(module_dev_env), ATELIER_DATA_DIR=str(settings.data_dir))  # the workers'
    done = await asyncio.to_thread(
        cli_main, "image", "a green kite on a yellow hill", "--quality", "low", "--max-iterations", "1",
        "--technical-weight", "0", "--vary", "models.image=offline,offline-sketch", "--vary", "threshold=30,95",
        "--repeat", "2", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "models.image=offline,threshold=30 (baseline)" in done.stdout and "vs models.image=offline" in done.stdout
    assert "[" in done.stdout and "method: 95% percentile bootstrap" in done.stdout, done.stdout
    refused = cli_main("image", "a fox", "--vary", "threshold=30,300", env=env)
    assert refused.returncode == 2 and "--vary threshold: must be between 0 and 100" in refused.stderr


async def test_a_saved_dataset_runs_by_id_and_a_bad_line_is_named(api):
    base_url, _ = api
    lines = ["prompt,id,threshold", *(f'"{text}",row-{n},{40 + n}' for n, text in enumerate(prompts(4)))]
    async with http(base_url) as client:
        saved = await client.post("/v1/datasets", files={"file": ("rows.csv", "\n".join(lines).encode(), "text/csv")})
        assert saved.status_code == 201, saved.text
        dataset = saved.json()
        assert dataset["rows"] == 4 and dataset["columns"] == ["id", "prompt", "threshold"]
        again = await client.post("/v1/datasets", files={"file": ("same.csv", "\n".join(lines).encode())})
        assert again.json()["id"] == dataset["id"], "the same rows are one dataset"
        bad = await client.post("/v1/datasets", files={"file": ("bad.jsonl", b'{"prompt": "a"}\n[1, 2]\n')})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.file", bad.text
        assert "line 2" in bad.json()["errors"][0]["message"]
        body = {"pipeline": "image", "dataset": {"id": dataset["id"]}, "base": FAST, "variants": [{"name": "a"}]}
        created = await client.post("/v1/experiments", json=body)
        assert created.status_code == 202, created.text
        view = await ended(client, created.json()["id"])
        # rows the experiment could not carry through its history (Temporal's 2 MB payloads): 422, nothing starts
        large = "".join(json.dumps({"prompt": f"lighthouse {n} " + "at dusk " * 400}) + "\n" for n in range(300))
        big = await client.post("/v1/datasets", files={"file": ("big.jsonl", large.encode())})
        assert big.status_code == 201, big.text
        body |= {"dataset": {"id": big.json()["id"]}, "variants": [{"name": v} for v in "abcd"], "repeat": 2}
        refused = await client.post("/v1/experiments", json=body)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.dataset", refused.text
        assert "split it into experiments of about" in refused.json()["errors"][0]["message"]
    assert view["labels"] == ["row-0", "row-1", "row-2", "row-3"] and view["counts"]["completed"] == 4
    assert [c["passed"] for c in view["outcomes"]] == [c["score"] >= 40 + c["row"] for c in view["outcomes"]]


async def test_cancelling_an_experiment_stops_every_cell(api, module_dev_env):
    base_url, _ = api
    rows = [{"prompt": text} for text in prompts(30)]
    slow = FAST | {"max_iterations": 6, "threshold": 100}
    body = {
        "pipeline": "image",
        "dataset": {"rows": rows},
        "base": slow,
        "variants": [{"name": "a"}],
        "max_parallel": 3,
    }
    client_t = module_dev_env.client
    async with http(base_url) as client:
        experiment = (await client.post("/v1/experiments", json=body)).json()

        async def three_running() -> bool:
            view = (await client.get(f"/v1/experiments/{experiment['id']}")).json()
            return view.get("counts", {}).get("running") == 3

        await eventually(three_running, 60, "three cells running")
        cancelled = await client.post(experiment["urls"]["cancel"])
        assert cancelled.status_code == 202
        view = await ended(client, experiment["id"])
    assert view["status"] == "cancelled" and view["state"] == "cancelled"
    assert view["counts"]["running"] == 0 and view["counts"]["pending"] == 0
    assert view["counts"]["cancelled"] >= 27 and view["counts"]["completed"] + view["counts"]["cancelled"] == 30
    children = [run async for run in client_t.list_workflows(f'ParentWorkflowId = "{experiment["id"]}"')]
    assert len(children) == view["counts"]["completed"] + 3 <= 6, "no cell started after the cancel"
    for child in children:  # each cell's run has ended: nothing more is spent
        status = (await client_t.get_workflow_handle(child.id).describe()).status.name
        assert status in ("CANCELED", "COMPLETED"), (child.id, status)
    assert view["report"]["variants"][0]["cancelled"] == view["counts"]["cancelled"]


async def test_continuing_as_new_loses_no_cell_and_runs_none_twice(api, module_dev_env):
    client = module_dev_env.client
    plan = ExperimentPlan(
        pipeline="image",
        workflow_type="ImageRefinementWorkflow",
        text_field="prompt",
        base=FAST,
        rows=[{"prompt": text} for text in prompts(7)],
        variants=[PlannedVariant(name="a"), PlannedVariant(name="b", set={"threshold": 90})],
        max_parallel=3,
        continue_after=4,  # 14 cells: four runs of the workflow
    )
    handle = await client.start_workflow(
        ExperimentWorkflow.run, plan, id=f"continued-{uuid.uuid4().hex[:8]}", task_queue=WORKFLOW_QUEUE
    )
    result = await handle.result()
    started: list[str] = []
    runs = 0
    async for history in each_run(client, handle.id, handle.first_execution_run_id):
        runs += 1
        started += [
            e.start_child_workflow_execution_initiated_event_attributes.workflow_id
            for e in history.events
            if e.HasField("start_child_workflow_execution_initiated_event_attributes")
        ]
    assert runs == 4, runs
    assert sorted(started) == sorted({*started}) and len(started) == 14, "every cell started once, across runs"
    assert [o.status for o in result.plan.outcomes] == ["completed"] * 14
    assert sorted(o.order for o in result.plan.outcomes) == list(range(1, 15))
    assert {o.child_id for o in result.plan.outcomes} == set(started)


async def test_one_budget_covers_the_experiment_and_the_cells_it_cannot_fit_are_refused(dev_env, tmp_path):
    """Each cell reserves its budget; a cell starts only when it fits beside what is spent and reserved; once
    nothing runs and it still does not fit, it is refused (the offline models priced: ~$0.02 a cell)."""
    priced = {"offline": Price(input_per_mtok=100.0, output_per_mtok=400.0, per_image=0.02)}
    cost = CostLimit(max_usd=0.05, text_call_usd=0.01, image_call_usd=0.03)
    plan = ExperimentPlan(
        pipeline="image",
        workflow_type="ImageRefinementWorkflow",
        text_field="prompt",
        base=FAST,
        rows=[{"prompt": text} for text in prompts(8)],
        variants=[PlannedVariant(name="a", cost=cost)],
        max_parallel=2,
        max_cost_usd=0.11,
    )
    queues = ["atelier-workflows", "atelier-text", "atelier-images", "atelier-storage"]
    async with running_workers(
        dev_env.client, GuardedProvider(OfflineProvider(), None, priced), LocalStore(tmp_path), queues
    ):
        result = await dev_env.client.execute_workflow(
            ExperimentWorkflow.run, plan, id="budgeted", task_queue=WORKFLOW_QUEUE
        )
    done = [o for o in result.plan.outcomes if o.status == "completed"]
    refused = [o for o in result.plan.outcomes if o.status == "refused"]
    assert done and refused and len(done) + len(refused) == 8, [o.status for o in result.plan.outcomes]
    assert result.plan.spent_usd == pytest.approx(sum(o.cost_usd for o in done)) and result.plan.spent_usd <= 0.11
    assert all(o.cost_usd > 0 for o in done) and all("budget" in o.error for o in refused)
    assert max(o.order for o in done) < min(o.order for o in refused), "refused once nothing ran and it did not fit"
    assert result.plan.spent_usd + cost.max_usd > 0.11, "the first refused cell would not have fitted"


async def test_rerun_failed_starts_exactly_the_failed_cells_again(dev_env, fake_openai, tmp_path):
    fake_openai.fail_text = "[fails]"
    settings = api_settings(address_of(dev_env), tmp_path)
    rows = [{"prompt": f"a red fox number {n}" + (" [fails]" if n in (1, 4) else "")} for n in range(6)]
    body = {
        "pipeline": "image",
        "dataset": {"rows": rows},
        "base": FAST | {"options": {"quality": "low", "background": "opaque"}},
        "variants": [{"name": "a", "set": {"threshold": 10}}, {"name": "b", "set": {"threshold": 90}}],
    }
    queues = ["atelier-workflows", "atelier-text", "atelier-images", "atelier-storage", "atelier-events"]
    store = LocalStore(settings.artifact_dir)
    async with (
        running_workers(dev_env.client, openai_provider(fake_openai), store, queues),
        serving(settings, dev_env.client) as (base_url, _),
        http(base_url) as client,
    ):
        experiment = (await client.post("/v1/experiments", json=body)).json()
        first = await ended(client, experiment["id"])
        before = await events_of(client, experiment["urls"]["events"])
        generated = Counter(fake_openai.generation_prompts())
        fake_openai.fail_text = None
        rerun, twice = await asyncio.gather(*(client.post(experiment["urls"]["rerun_failed"]) for _ in range(2)))
        if rerun.status_code != 202:  # the two asked at once: either may have been first
            rerun, twice = twice, rerun
        assert twice.status_code in (202, 409), twice.text  # it joined the rerun or was told one runs: never a 500
        second = await ended(client, experiment["id"])

        async def rerun_events() -> list[dict] | None:
            found = await events_of(client, experiment["urls"]["events"] + f"?after={before[-1]['seq']}")
            return found if found and found[-1]["type"] == "run.completed" else None

        events = await eventually(rerun_events, 60, "the rerun's events on the stream")
    assert first["counts"]["failed"] == 4 and first["counts"]["completed"] == 8, first["counts"]
    failed = {(c["row"], c["variant"]) for c in first["outcomes"] if c["status"] == "failed"}
    assert failed == {(1, 0), (1, 1), (4, 0), (4, 1)}
    assert rerun.status_code == 202 and rerun.json()["cells"] == 4
    assert second["counts"] == first["counts"] | {"failed": 0, "completed": 12}
    earlier = {c["cell"]: c for c in first["outcomes"]}
    for cell in second["outcomes"]:
        if (cell["row"], cell["variant"]) in failed:
            assert cell["attempt"] == 2 and cell["child_id"].endswith("-a2") and cell["status"] == "completed"
        else:
            assert cell == earlier[cell["cell"]], "a cell that had completed is left as it was"
    again = Counter(fake_openai.generation_prompts()) - generated
    assert sorted(again.elements()) == sorted(r["prompt"] for r in rows if "[fails]" in r["prompt"] for _ in range(2))
    assert [e["type"] for e in before].count("experiment.cell.completed") == 12
    assert [e["type"] for e in events].count("experiment.cell.completed") == 4, [e["type"] for e in events]
    assert events[0]["seq"] == before[-1]["seq"] + 1, "the stream goes on from the first run's end"


def test_a_cell_passes_at_its_jobs_default_threshold_when_the_job_leaves_it_out():
    """A job without `threshold` (or a meme's `target_score`) is judged at the job's default, not left unjudged."""
    from models.experiment import Cell, completed

    image = ExperimentPlan.model_construct(pipeline="image")
    cell = Cell(index=0, row=0, variant=0, repeat=0)
    assert completed(image, cell, {"prompt": "x"}, {"final_score": 90})["passed"] is True
    assert completed(image, cell, {"prompt": "x"}, {"final_score": 60})["passed"] is False
    assert completed(image, cell, {"prompt": "x", "threshold": 50}, {"final_score": 60})["passed"] is True


def test_the_csv_export_defuses_what_a_spreadsheet_would_run_as_a_formula():
    """Row labels and variant names are the caller's words: one that starts a formula is exported as text."""
    from kit.experiment_report import cells_csv
    from models.experiment import CellOutcome, ReportRequest

    request = ReportRequest(
        experiment_id="x",
        pipeline="image",
        variants=["@SUM(1+1)", "+vivid"],
        labels=["=cmd|' /C calc'!A0", "-2 lighthouses"],
        outcomes=[
            CellOutcome(cell=0, row=0, variant=0, status="completed", score=-3.0),
            CellOutcome(cell=1, row=1, variant=1, status="completed", score=81.0),
        ],
    )
    records = list(csv.DictReader(io.StringIO(cells_csv(request).decode())))
    assert [(r["label"], r["variant"]) for r in records] == [
        ("'=cmd|' /C calc'!A0", "'@SUM(1+1)"),
        ("'-2 lighthouses", "'+vivid"),
    ]
    assert [r["score"] for r in records] == ["-3.0", "81.0"], "numbers stay numbers"

"""People's verdicts (#44 items 2–4) through the HTTP API (real uvicorn) on a real dev server and workers with
the offline provider's three models: ratings replaced per rater, votes only between artifacts of one prompt,
tenants kept apart, verdicts kept in the SQLite file across an API restart (a real `serve` process), the
leaderboard and the judge's agreement equal to `kit.stats` on the stored verdicts, and the JSON-lines export."""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from activities.providers import Providers
from kit import stats
from kit.api_keys import KeyStore, digest
from kit.db import Database, upgrade
from kit.db.base import now
from kit.db.ratings import RatedArtifact, Ratings
from kit.storage import LocalStore, run_key
from models.catalog import from_settings
from models.settings import EVENTS_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE, Settings
from tests.api_support import api_settings, http, serving
from tests.conftest import ROOT, address_of, atelier_env, eventually, free_port, spawn, stop_process
from tests.db_support import database_address, pg_database, postgres  # noqa: F401
from workers.registry import build_workers

pytestmark = pytest.mark.slow  # a dev server, workers and uvicorn

FAST = {"max_iterations": 2, "threshold": 60, "technical_weight": 0, "options": {"quality": "low"}}
VARIANTS = {"plain": "offline", "vivid": "offline-vivid", "sketch": "offline-sketch"}
ROWS = ["a red kite over a green hill", "a blue whale under a yellow moon"]
KITE = "a red fox in a blue snowfield"
QUEUES = [WORKFLOW_QUEUE, TEXT_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE, EVENTS_QUEUE]
RATERS = 4


class Made:
    """What the module's runs made: the experiment's cells and two stand-alone runs of one prompt, one of
    another."""

    def __init__(self) -> None:
        self.experiment = ""
        self.cells: list[dict[str, Any]] = []  # each: variant, row, child_id, iterations (as the result has them)
        self.alone: dict[str, list[dict[str, Any]]] = {}  # run id → its iterations
        self.prompts: dict[str, str] = {}  # run id → prompt


@contextlib.asynccontextmanager
async def workers(client: Client, settings: Settings) -> AsyncIterator[None]:
    """Workers for every queue but scoring, each catalog model its own offline provider (so a run's pictures
    name the model it chose)."""
    providers = Providers(from_settings(settings), settings)
    async with contextlib.AsyncExitStack() as stack:
        for worker in build_workers(client, QUEUES, providers, LocalStore(settings.artifact_dir), settings):
            await stack.enter_async_context(worker)
        yield


@pytest.fixture(scope="module")
async def api(module_dev_env, tmp_path_factory) -> AsyncIterator[tuple[str, Settings, Path]]:
    """The API with keys, on one dev server with the workers: its URL, its settings and the folder whose
    `data` it serves (a `serve` process started on it serves the same)."""
    folder = tmp_path_factory.mktemp("ratings")
    settings = api_settings(address_of(module_dev_env), folder / "data")
    async with workers(module_dev_env.client, settings), serving(settings, module_dev_env.client) as (base, served):
        yield base, served, folder


@pytest.fixture(scope="module")
def keys(api) -> dict[str, list[str]]:
    store = KeyStore(api[1])
    return {"acme": [store.add("acme")[0] for _ in range(RATERS)], "zeta": [store.add("zeta")[0]]}


async def ended(client: httpx.AsyncClient, path: str, timeout: float = 120) -> dict:
    async def done() -> dict | None:
        answer = await client.get(path)
        return answer.json() if answer.status_code == 200 and answer.json()["status"] != "running" else None

    return await eventually(done, timeout, f"{path} ended", every=0.3)


async def iterations(client: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    result = await client.get(f"/v1/runs/{run_id}/result")
    assert result.status_code == 200, result.text
    return result.json()["iterations"]


@pytest.fixture(scope="module")
async def made(api, keys) -> Made:
    """An experiment (2 rows × 3 models, two iterations a cell) and three image runs, all acme's."""
    base, _, _ = api
    found = Made()
    body = {
        "pipeline": "image",
        "dataset": {"rows": [{"prompt": p} for p in ROWS]},
        "base": FAST,
        "variants": [{"name": name, "set": {"models.image": model}} for name, model in VARIANTS.items()],
    }
    async with http(base, keys["acme"][0]) as acme:
        created = await acme.post("/v1/experiments", json=body)
        assert created.status_code == 202, created.text
        found.experiment = created.json()["id"]
        runs = []
        for prompt, model in ((KITE, "offline"), (KITE, "offline-vivid"), (ROWS[0], "offline")):
            started = await acme.post("/v1/images", json=FAST | {"prompt": prompt, "models": {"image": model}})
            assert started.status_code == 202, started.text
            runs.append(started.json()["id"])
            found.prompts[runs[-1]] = prompt
        view = await ended(acme, f"/v1/experiments/{found.experiment}")
        assert view["counts"]["completed"] == 6, view["counts"]
        for cell in view["outcomes"]:
            found.cells.append(
                {
                    "variant": cell["variant_name"],
                    "row": cell["row"],
                    "child_id": cell["child_id"],
                    "iterations": await iterations(acme, cell["child_id"]),
                }
            )
        for run_id in runs:
            await ended(acme, f"/v1/runs/{run_id}")
            found.alone[run_id] = await iterations(acme, run_id)
    return found


def key_of(iteration: dict[str, Any]) -> str:
    return iteration["image"]["key"]


def key_id(key: str) -> str:
    return digest(key)[:12]


async def test_a_second_rating_by_the_same_key_replaces_the_first_and_records_what_was_rated(api, keys, made):
    base, _, _ = api
    run_id = next(iter(made.alone))
    first = made.alone[run_id][0]
    one, two = keys["acme"][0], keys["acme"][1]
    async with http(base, one) as rater_one, http(base, two) as rater_two:
        given = await rater_one.post("/v1/ratings", json={"artifact": key_of(first), "stars": 2, "tags": ["blurry"]})
        assert given.status_code == 201, given.text
        again = await rater_one.post("/v1/ratings", json={"artifact": key_of(first), "stars": 5, "comment": "better"})
        assert again.status_code == 201, again.text
        other = await rater_two.post("/v1/ratings", json={"artifact": key_of(first), "stars": 3})
        assert other.status_code == 201, other.text
        listed = (await rater_one.get("/v1/ratings", params={"run": run_id})).json()["ratings"]

        bad = await rater_one.post("/v1/ratings", json={"artifact": key_of(first), "stars": 6})
        truthy = await rater_one.post("/v1/ratings", json={"artifact": key_of(first), "stars": True})
        unknown = await rater_one.post(
            "/v1/ratings", json={"artifact": "runs/acme.image-nope/iteration-01.png", "stars": 3}
        )
        not_a_picture = await rater_one.post("/v1/ratings", json={"artifact": f"runs/{run_id}/nothing.png", "stars": 3})

    assert sorted((r["rater"], r["stars"]) for r in listed) == sorted([(key_id(one), 5), (key_id(two), 3)])
    mine = next(r for r in listed if r["rater"] == key_id(one))
    assert mine["tags"] == [] and mine["comment"] == "better", "the second rating replaced the first whole"
    assert mine["run"] == run_id and mine["prompt"] == KITE and mine["kind"] == "iteration"
    assert (mine["model"], mine["judge"], mine["judge_score"]) == (first["model"], first["eval_model"], first["score"])
    assert mine["threshold"] == FAST["threshold"] and mine["experiment"] is None
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.stars"
    assert truthy.status_code == 422 and truthy.json()["errors"][0]["field"] == "body.stars", "true is no star"
    assert unknown.status_code == 404 and not_a_picture.status_code == 404


async def test_a_vote_is_between_two_artifacts_of_one_prompt_replaced_per_pair_and_taken_back(api, keys, made):
    base, _, _ = api
    kite_a, kite_b, other = made.alone
    a, b = key_of(made.alone[kite_a][0]), key_of(made.alone[kite_b][-1])
    async with http(base, keys["acme"][2]) as acme:
        across = await acme.post("/v1/votes", json={"a": a, "b": key_of(made.alone[other][0]), "winner": "a"})
        itself = await acme.post("/v1/votes", json={"a": a, "b": a, "winner": "tie"})
        first = await acme.post("/v1/votes", json={"a": a, "b": b, "winner": "a"})
        second = await acme.post("/v1/votes", json={"a": b, "b": a, "winner": "tie"})
        assert first.status_code == second.status_code == 201, first.text + second.text
        listed = (await acme.get("/v1/ratings", params={"run": kite_a})).json()["votes"]
        gone = await acme.delete(f"/v1/votes/{second.json()['id']}")
        again = await acme.delete(f"/v1/votes/{second.json()['id']}")
        after = (await acme.get("/v1/ratings", params={"run": kite_a})).json()["votes"]

    for refused in (across, itself):
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.b", refused.text
    assert "prompt" in across.json()["errors"][0]["message"]
    assert len(listed) == 1 and listed[0]["id"] == first.json()["id"], "one vote per rater and pair"
    assert (listed[0]["a"]["artifact"], listed[0]["b"]["artifact"], listed[0]["winner"]) == (b, a, "tie")
    assert listed[0]["a"]["model"] == "offline-vivid" and listed[0]["b"]["model"] == "offline"
    assert gone.status_code == 204 and again.status_code == 404 and after == []


async def test_another_tenants_artifacts_are_404_and_its_verdicts_invisible(api, keys, made):
    base, _, _ = api
    run_id = next(iter(made.alone))
    key = key_of(made.alone[run_id][0])
    async with http(base, keys["acme"][3]) as acme, http(base, keys["zeta"][0]) as zeta:
        assert (await acme.post("/v1/ratings", json={"artifact": key, "stars": 4})).status_code == 201
        rating = await zeta.post("/v1/ratings", json={"artifact": key, "stars": 1})
        nobody = await zeta.post("/v1/ratings", json={"artifact": key.replace(run_id, "zeta.image-nope"), "stars": 1})
        vote = await zeta.post("/v1/votes", json={"a": key, "b": key_of(made.alone[run_id][1]), "winner": "a"})
        by_run = await zeta.get("/v1/ratings", params={"run": run_id})
        by_experiment = await zeta.get("/v1/ratings", params={"experiment": made.experiment})
        board = await zeta.get("/v1/leaderboard", params={"experiment": made.experiment})
        everything = (await zeta.get("/v1/ratings")).json()
        models = (await zeta.get("/v1/leaderboard")).json()
        judged = (await zeta.get("/v1/judge")).json()
        exported = await zeta.get("/v1/ratings/export")

    assert rating.status_code == nobody.status_code == vote.status_code == 404
    assert rating.json()["detail"] == nobody.json()["detail"].replace("zeta.image-nope", run_id)
    assert by_run.status_code == by_experiment.status_code == board.status_code == 404
    assert everything == {"ratings": [], "votes": []} and models["entries"] == [] and judged["evaluators"] == []
    assert exported.status_code == 200 and exported.content == b""


async def test_a_worlds_avatar_and_post_and_a_meme_are_rated_with_the_models_that_made_them(api, keys):
    base, settings, _ = api
    world_body = {"prompt": "A harbour town of kite makers", "characters": 1, "posts_per_character": 3}
    world_body |= {"scoring": False, "models": {"text": "offline-vivid", "image": "offline-sketch"}}
    meme_body = {"topic": "mondays at the kite shop", "format": "drake", "models": {"image": "offline-vivid"}}
    async with http(base, keys["acme"][0]) as acme:
        world = (await acme.post("/v1/worlds", json=world_body)).json()["id"]
        meme = (await acme.post("/v1/memes", json=meme_body)).json()["id"]
        assert (await ended(acme, f"/v1/runs/{meme}"))["status"] == "completed"

        async def finished_character() -> str | None:  # its manifest names what made its avatar and posts
            found = sorted((settings.artifact_dir / "worlds" / world).glob("characters/*/character.json"))
            return found[0].relative_to(settings.artifact_dir).as_posix() if found else None

        manifest = await eventually(finished_character, 120, "a finished character", every=0.3)
        character = (await acme.get(f"/v1/artifacts/{manifest}")).json()
        post = next(p for p in character["posts"] if p["image"])  # (not every post has a picture)
        meme_made = (await acme.get(f"/v1/runs/{meme}/result")).json()
        wanted = {
            character["avatar"]["key"]: ("avatar", character["avatar_model"]),
            post["post"]["key"]: ("post", post["model"]),
            post["image"]["key"]: ("post", post["image_model"]),
            run_key(meme, "meme.png"): ("meme", meme_made["image_model"]),  # its own (the result's is public)
        }
        for key in wanted:
            answer = await acme.post("/v1/ratings", json={"artifact": key, "stars": 4})
            assert answer.status_code == 201, answer.text
        rated = (await acme.get("/v1/ratings", params={"run": world})).json()["ratings"]
        rated += (await acme.get("/v1/ratings", params={"run": meme})).json()["ratings"]

    assert {r["artifact"]: (r["kind"], r["model"]) for r in rated} == wanted
    assert {r["model"] for r in rated} == {"offline-vivid", "offline-sketch"}, "each the model the run chose"
    (memed,) = [r for r in rated if r["kind"] == "meme"]
    assert memed["judge_score"] == pytest.approx(meme_made["score"] * 100) and memed["judge"] == meme_made["text_model"]
    assert memed["prompt"] == meme_body["topic"] and memed["threshold"] == pytest.approx(70)
    assert {r["prompt"] for r in rated if r["run"] == world} == {world_body["prompt"]}


def outcome(seed: str, a: str, b: str) -> str:
    """A people's verdict with a known order (vivid > plain > sketch) and some noise and ties."""
    strength = {"vivid": 2, "plain": 1, "sketch": 0}
    draw = random.Random(seed).random()
    if draw < 0.15:
        return "tie"
    better = "a" if strength[a] > strength[b] else "b"
    return better if draw < 0.85 else {"a": "b", "b": "a"}[better]


async def cast_votes(base: str, keys: list[str], made: Made) -> list[tuple[str, str, str]]:
    """Every key votes on every pair of cells of a row under two variants (their last pictures)."""
    cast = []
    for n, key in enumerate(keys):
        async with http(base, key) as rater:
            for row in range(len(ROWS)):
                cells = [c for c in made.cells if c["row"] == row]
                for left, right in itertools.combinations(cells, 2):
                    if n % 2:
                        left, right = right, left  # sides swapped for half the raters
                    winner = outcome(
                        f"{n}-{row}-{left['variant']}-{right['variant']}", left["variant"], right["variant"]
                    )
                    body = {"a": key_of(left["iterations"][-1]), "b": key_of(right["iterations"][-1]), "winner": winner}
                    answer = await rater.post("/v1/votes", json=body)
                    assert answer.status_code == 201, answer.text
                    cast.append((left["variant"], right["variant"], winner))
    return cast


async def rate_all(base: str, key: str, made: Made) -> dict[str, int]:
    """Stars for every picture of the experiment: mostly following the judge's score, not always."""
    given = {}
    async with http(base, key) as rater:
        for cell in made.cells:
            for it in cell["iterations"]:
                noise = random.Random(key_of(it)).choice([-1, 0, 0, 1])
                stars = max(1, min(5, round(it["score"] / 20) + noise))
                answer = await rater.post("/v1/ratings", json={"artifact": key_of(it), "stars": stars})
                assert answer.status_code == 201, answer.text
                given[key_of(it)] = stars
    return given


async def test_the_leaderboard_and_the_judge_equal_kit_stats_on_the_stored_verdicts(api, keys, made):
    base, _, _ = api
    cast = await cast_votes(base, keys["acme"], made)
    given = await rate_all(base, keys["acme"][0], made)
    async with http(base, keys["acme"][0]) as acme:
        stored = (await acme.get("/v1/ratings", params={"experiment": made.experiment, "limit": 5000})).json()
        board = (await acme.get("/v1/leaderboard", params={"experiment": made.experiment})).json()
        models = (await acme.get("/v1/leaderboard")).json()
        judged = (await acme.get("/v1/judge", params={"experiment": made.experiment})).json()
        view = (await acme.get(f"/v1/experiments/{made.experiment}")).json()

    votes = sorted((v["a"]["variant"], v["b"]["variant"], v["winner"]) for v in stored["votes"])
    assert votes == sorted(cast), "the votes stored are the votes cast"
    expected = stats.leaderboard(votes)
    assert [e["name"] for e in board["entries"]] == [s.name for s in expected]
    for entry, standing in zip(board["entries"], expected, strict=True):
        assert entry["strength"] == pytest.approx(standing.strength, abs=1e-5)
        assert (entry["low"], entry["high"]) == (
            pytest.approx(standing.low, abs=1e-5),
            pytest.approx(standing.high, abs=1e-5),
        )
        assert (entry["votes"], entry["win_rate"]) == (standing.votes, pytest.approx(standing.win_rate, abs=1e-6))
        stars = sorted(given[r["artifact"]] for r in stored["ratings"] if r["variant"] == entry["name"])
        mean = stats.mean_interval(stars)
        assert (entry["mean_stars"]["estimate"], entry["mean_stars"]["count"]) == (
            pytest.approx(mean.estimate),
            len(stars),
        )
    assert board["entries"][0]["name"] == "vivid" and board["entries"][-1]["name"] == "sketch", "the known order"
    by_model = {"plain": "offline", "vivid": "offline-vivid", "sketch": "offline-sketch"}
    model_votes = sorted((by_model[a], by_model[b], w) for a, b, w in votes)
    assert [(e["name"], e["strength"]) for e in models["entries"][: len(VARIANTS)]] == [
        (s.name, pytest.approx(s.strength, abs=1e-5)) for s in stats.leaderboard(model_votes)
    ]
    assert view["people"] == board, "the experiment's report has the people's ranking beside the judge's"

    scores = {key_of(it): (it["score"], it["eval_model"]) for cell in made.cells for it in cell["iterations"]}
    mine = [r for r in stored["ratings"] if r["rater"] == key_id(keys["acme"][0])]
    assert {r["artifact"]: r["stars"] for r in mine} == given and len(given) == len(scores)
    assert all(r["judge_score"] == scores[r["artifact"]][0] for r in stored["ratings"]), "the results' scores"
    assert {judge for _, judge in scores.values()} == {"offline"} and {r["threshold"] for r in mine} == {60}
    (offline,) = judged["evaluators"]
    everyone = sorted((scores[r["artifact"]][0], r["stars"], FAST["threshold"]) for r in stored["ratings"])
    assert offline["judge"] == "offline"
    rho = stats.spearman([s for s, _, _ in everyone], [n for _, n, _ in everyone])
    kappa = stats.cohen_kappa([s >= t for s, _, t in everyone], [n >= 4 for _, n, _ in everyone])
    for measured, reference in ((offline["spearman"], rho), (offline["kappa"], kappa)):
        assert measured["count"] == reference.count == len(everyone)
        for field in ("estimate", "low", "high"):
            assert measured[field] == pytest.approx(getattr(reference, field), abs=1e-5), field
    pairs = [(scores[v["a"]["artifact"]][0], scores[v["b"]["artifact"]][0], v["winner"]) for v in stored["votes"]]
    agreement = stats.preference_agreement(*zip(*sorted(pairs), strict=True))
    for field in ("estimate", "low", "high"):
        assert offline["agreement"][field] == pytest.approx(getattr(agreement, field)), field
    assert offline["agreement"]["count"] == agreement.count == sum(w != "tie" for _, _, w in pairs)
    best = stats.best_threshold([s for s, _, _ in everyone], [n >= 4 for _, n, _ in everyone])
    assert offline["best_threshold"]["value"] == pytest.approx(best.value)
    assert sum(p["count"] for p in offline["points"]) == len(everyone)


async def test_verdicts_export_as_json_lines_and_survive_an_api_restart(api, keys, made):
    base, settings, folder = api
    async with http(base, keys["acme"][1]) as acme:
        cell = made.cells[0]
        answer = await acme.post(
            "/v1/ratings", json={"artifact": key_of(cell["iterations"][0]), "stars": 4, "tags": ["sharp"]}
        )
        assert answer.status_code == 201, answer.text
        before = (await acme.get("/v1/ratings", params={"limit": 5000})).json()
        exported = await acme.get("/v1/ratings/export")

    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert exported.headers["content-type"] == "application/x-ndjson"
    assert len(lines) == len(before["ratings"]) + len(before["votes"]) and lines
    for line in lines:
        if line["type"] == "rating":
            assert {"artifact", "prompt", "model", "judge_score", "stars"} <= line.keys(), line
        else:
            assert (
                line["prompt"] and line["a"]["artifact"] and line["b"]["model"] and line["winner"] in ("a", "b", "tie")
            )
    tagged = [line for line in lines if line.get("tags") == ["sharp"]]
    assert (
        tagged
        and tagged[0]["prompt"] == ROWS[cell["row"]]
        and tagged[0]["judge_score"] == cell["iterations"][0]["score"]
    )

    database = settings.data_dir / "atelier.db"
    with sqlite3.connect(database) as connection:  # the file itself holds them
        counted = connection.execute("SELECT count(*) FROM ratings").fetchone()[0]
    assert counted == len(before["ratings"])
    env = atelier_env(folder, settings.temporal_address)
    port = free_port()
    with open(folder / "serve.log", "ab") as log:
        process = spawn(
            [sys.executable, "-m", "starter", "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        restarted = f"http://127.0.0.1:{port}"

        async def up() -> bool:
            assert process.poll() is None, (folder / "serve.log").read_text()[-2000:]
            try:
                async with httpx.AsyncClient(base_url=restarted, timeout=2) as probe:
                    return (await probe.get("/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(up, 90, "a second API process")
        async with http(restarted, keys["acme"][1]) as acme:
            after = (await acme.get("/v1/ratings", params={"limit": 5000})).json()
    finally:
        stop_process(process)
    assert unlinked(after) == unlinked(before), "every rating and vote, as another API process on the same data serves"


def unlinked(value: Any) -> Any:
    """Verdicts without the artifacts' links (absolute, at each API's own address)."""
    if isinstance(value, dict):
        return {name: unlinked(item) for name, item in value.items() if name != "url"}
    return [unlinked(item) for item in value] if isinstance(value, list) else value


def test_one_rating_per_rater_and_artifact_and_one_vote_per_pair_on_sqlite_and_postgresql(database_address):  # noqa: F811
    """The repository's statements on both databases: a second rating or vote replaces the first (a vote on
    the same two in the other order too), what an artifact was is kept once, a vote is taken back by its rater."""
    db = Database(database_address)
    upgrade(db)
    made = [RatedArtifact(key=f"runs/acme.image-1/iteration-0{n}.png", run="acme.image-1", pipeline="image",
                          kind="iteration", prompt="a kite", model=f"m{n}", judge="j", score=40.0 + n, threshold=50.0)
            for n in (1, 2)]  # fmt: skip
    a, b = (m.key for m in made)
    with db.writing() as session:
        ratings = Ratings(session, "acme")
        for facts in [*made, made[0]]:
            ratings.record(RatedArtifact(**{c.key: getattr(facts, c.key) for c in RatedArtifact.__table__.columns}))
        ratings.rate("k1", a, 2, ["dull"], "meh")
        ratings.rate("k1", a, 5, [], None)
        ratings.rate("k2", a, 3, ["ok"], None)
        first = ratings.vote("k1", a, b, "a", None)
        again = ratings.vote("k1", b, a, "tie", None)
        other = ratings.vote("k2", a, b, "b", None)
    with db.reading() as session:
        ratings, zeta = Ratings(session, "acme"), Ratings(session, "zeta")
        given = sorted((r.rater, r.stars, r.tags, r.comment) for r, _ in ratings.ratings())
        sides = sorted(ratings.tally("model"))
        assert ratings.facts(a).score == 41.0 and zeta.facts(a) is None and zeta.ratings() == []
    assert given == [("k1", 5, [], None), ("k2", 3, ["ok"], None)]
    assert again.id == first.id and sides == [("m1", "m2", "b", 1), ("m2", "m1", "tie", 1)]
    with db.writing() as session:
        assert Ratings(session, "acme").unvote("k2", first.id) is None, "another rater's vote stays"
        assert Ratings(session, "acme").unvote("k2", other.id).id == other.id
    with db.reading() as session:
        assert [v.vote.winner for v in Ratings(session, "acme").votes()] == ["tie"]
        assert Ratings(session, "acme").last_vote("k1", None).voted_at <= now()

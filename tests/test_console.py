"""The Temporal UI as a console: every step labelled, runs summarised and searchable, `starter runs`."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore
from models.conversation import ConversationConfig, ConversationStart
from models.image import ImageJob
from models.meme import MemeJob
from models.search_attributes import COST, PIPELINE, ROOT, STATE
from models.settings import Settings
from models.world import WorldJob
from starter.launch import labelled_start
from tests.conftest import (
    TEMPORAL,
    address_of,
    atelier_env,
    cli_main,
    eventually,
    run_cli,
    running_workers,
    start_worker,
)
from workflows.conversation import ConversationWorkflow
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.meme import MemeWorkflow
from workflows.world import WorldWorkflow

SCHEDULED = ("activity_task_scheduled_event_attributes", "start_child_workflow_execution_initiated_event_attributes")


@pytest.fixture(scope="module")
async def runs(module_dev_env, tmp_path_factory) -> AsyncIterator[dict[str, str]]:
    """An image run, a world (2 × 2 with images), a meme and a conversation turn, started as the CLI does;
    the workers stay up for the tests' queries."""
    client = module_dev_env.client
    settings = Settings(TEMPORAL_ADDRESS=address_of(module_dev_env), LLM_API_KEY=None)
    tag = uuid.uuid4().hex[:6]
    ids = {p: f"{p}-console-{tag}" for p in ("image", "world", "meme", "conversation")}
    store = LocalStore(tmp_path_factory.mktemp("console"))
    async with running_workers(client, OfflineProvider(), store):
        image = ImageJob(prompt="a lighthouse at dusk", max_iterations=2, threshold=100, technical_weight=0)
        world = WorldJob(prompt="A harbour town of lamp makers", characters=2, posts_per_character=2, scoring=False)
        meme = MemeJob(topic="mondays at the office", use_cache=False)
        started = [
            await labelled_start(
                client, settings, "image", image.prompt, ImageRefinementWorkflow.run, image, ids["image"]
            ),
            await labelled_start(client, settings, "world", world.prompt, WorldWorkflow.run, world, ids["world"]),
            await labelled_start(client, settings, "meme", meme.topic, MemeWorkflow.run, meme, ids["meme"]),
        ]
        for handle in started:  # bounded: a run that cannot finish fails the test instead of hanging it
            await asyncio.wait_for(handle.result(), 180)
        chat = await labelled_start(
            client,
            settings,
            "conversation",
            "conversation",
            ConversationWorkflow.run,
            ConversationStart(config=ConversationConfig(retrieval_wait_s=30)),
            ids["conversation"],
        )
        await asyncio.wait_for(chat.execute_update(ConversationWorkflow.ask, "What do lamp makers sell?"), 120)
        await chat.signal(ConversationWorkflow.end)
        await asyncio.wait_for(chat.result(), 60)
        yield ids


async def events(client: Client, workflow_id: str) -> list:
    return [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]


def summary_of(event) -> str:
    return json.loads(event.user_metadata.summary.data) if event.user_metadata.HasField("summary") else ""


async def labelled_steps(client: Client, workflow_id: str) -> list[str]:
    """Every scheduled activity and child of the run carries a summary; returns them in order."""
    history = await events(client, workflow_id)
    assert summary_of(history[0]), f"{workflow_id} has no static summary"
    steps = [e for e in history if any(e.HasField(kind) for kind in SCHEDULED)]
    unlabelled = [e.event_type for e in steps if not summary_of(e)]
    assert steps and not unlabelled, f"{workflow_id}: unlabelled steps {unlabelled}"
    return [summary_of(e) for e in steps]


async def current_details(handle: WorkflowHandle) -> str:
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def test_every_step_of_every_pipeline_says_what_it_is(module_dev_env, runs):
    client = module_dev_env.client
    image = await labelled_steps(client, runs["image"])
    first = ["iteration 1/2 · generate", "iteration 1/2 · evaluate", "iteration 1/2 · refine prompt"]
    assert image == [*first, "iteration 2/2 · generate", "iteration 2/2 · evaluate"]
    world = await labelled_steps(client, runs["world"])
    assert world[0] == "world · description" and "world · character batch 1" in world
    children = [s for s in world if " · character of " in s]
    assert len(children) == 2 and all(s.startswith("@") for s in children)
    assert world[-1] == "world · manifest and gallery of 2 characters"
    username = children[0].split(" ")[0].lstrip("@")
    character = await labelled_steps(client, f"{runs['world']}--{username}")
    assert f"@{username} · profile" in character and f"@{username} · avatar" in character
    assert f"@{username} · post 2/2 · text" in character
    meme = await labelled_steps(client, runs["meme"])
    assert meme[0] == "meme · cache lookup" and "meme · picture for panel 1" in meme and "meme · upload" in meme
    turn = await labelled_steps(client, runs["conversation"])
    assert "turn 1 · experience" in turn and "turn 1 · yield" in turn and "turn 1 · archive" in turn


async def test_runs_start_with_a_summary_and_details_and_keep_current_details(module_dev_env, runs):
    client = module_dev_env.client
    described = await client.get_workflow_handle(runs["world"]).describe()
    assert await described.static_summary() == "world · A harbour town of lamp makers"
    details = await described.static_details()
    assert "| characters | `2` |" in details and f"worlds/{runs['world']}/index.html" in details
    world = await current_details(client.get_workflow_handle(runs["world"]))
    assert "characters 2 of 2 · posts 4 of 4 · images" in world and "spend $0.0000" in world
    image = await current_details(client.get_workflow_handle(runs["image"]))
    assert image.startswith("**iteration 2 of 2** · done") and "best score" in image


async def test_runs_are_searchable_by_pipeline_state_cost_and_root(module_dev_env, runs):
    client = module_dev_env.client

    async def listed(query: str, expected: set[str]) -> None:
        """Visibility is eventually consistent: wait for the expected set (and fail naming the query)."""

        async def matches() -> bool:
            return {w.id async for w in client.list_workflows(query)} == expected

        await eventually(matches, 20, f"{query} to list {sorted(expected)}")

    world, image = runs["world"], runs["image"]
    characters = {f"{world}--{u}" for u in await usernames(client, world)}
    await listed(f'AtelierPipeline = "world" AND AtelierRoot IN ("{world}", "{image}")', {world})
    await listed(f'AtelierRoot = "{world}"', {world, *characters})
    await listed(
        f'AtelierPipeline = "character" AND AtelierState = "COMPLETED" AND AtelierRoot = "{world}"', characters
    )
    await listed(f'AtelierState = "COMPLETED" AND AtelierRoot = "{image}"', {image})
    await listed(f'AtelierCostUSD >= 0 AND AtelierPipeline = "image" AND AtelierRoot = "{image}"', {image})
    await listed(f'AtelierPipeline = "meme" AND AtelierScore > 0 AND AtelierRoot = "{runs["meme"]}"', {runs["meme"]})
    await listed(f'AtelierState = "CLOSED" AND AtelierRoot = "{runs["conversation"]}"', {runs["conversation"]})
    attributes = (await client.get_workflow_handle(image).describe()).typed_search_attributes
    assert attributes.get(PIPELINE) == "image" and attributes.get(STATE) == "COMPLETED"
    assert attributes.get(COST) == 0.0 and attributes.get(ROOT) == image


async def usernames(client: Client, world_id: str) -> list[str]:
    history = await events(client, world_id)
    started = [
        e.start_child_workflow_execution_initiated_event_attributes.workflow_id
        for e in history
        if e.HasField(SCHEDULED[1])
    ]
    return [workflow_id.split("--", 1)[1] for workflow_id in started]


@pytest.mark.slow
def test_runs_lists_recent_runs_as_a_table_and_as_json(module_dev_env, runs, tmp_path):
    env = atelier_env(tmp_path, address_of(module_dev_env))
    listed = run_cli("runs", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["workflow_id"]: r for r in json.loads(listed.stdout)}
    assert {runs["image"], runs["world"], runs["meme"], runs["conversation"]} <= set(rows)
    assert not any(r["pipeline"] == "character" for r in rows.values()), "characters only on request"
    world, image = rows[runs["world"]], rows[runs["image"]]
    assert world["pipeline"] == "world" and world["state"] == "COMPLETED" and world["cost_usd"] == 0.0
    assert image["score"] is not None and image["ui"].endswith(f"/workflows/{runs['image']}")
    started = [r["started"] for r in json.loads(listed.stdout)]
    assert started == sorted(started, reverse=True), "newest first"

    worlds = json.loads(cli_main("runs", "--pipeline", "world", "--since", "1h", "--json", env=env).stdout)
    assert [r["workflow_id"] for r in worlds] == [runs["world"]]
    characters = json.loads(
        cli_main("runs", "--pipeline", "character", "--state", "completed", "--json", env=env).stdout
    )
    assert len(characters) == 2 and all(r["workflow_id"].startswith(runs["world"]) for r in characters)
    assert (
        json.loads(cli_main("runs", "--limit", "1", "--json", env=env).stdout)[0]["workflow_id"] == runs["conversation"]
    )
    assert json.loads(cli_main("runs", "--state", "FAILED", "--json", env=env).stdout) == []

    table = cli_main("runs", "--pipeline", "image", env=env)
    assert table.returncode == 0 and runs["image"] in table.stdout and "COMPLETED" in table.stdout
    header = table.stdout.splitlines()[0].split()
    assert header[:4] == ["id", "pipeline", "state", "started"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pipeline", "video"], "--pipeline 'video': choose one of image, world"),
        (["--state", "DONE"], "--state 'DONE': choose one of"),
        (["--since", "yesterday"], "--since 'yesterday': use a positive number and a unit"),
        (["--since", "0h"], "--since '0h'"),
        (["--limit", "0"], "--limit 0: choose 1 to 1000"),
        (["--limit", "many"], "argument --limit: invalid int value"),
    ],
)
def test_runs_refuses_bad_input_in_one_line(args, message, tmp_path):
    result = cli_main("runs", *args, env=atelier_env(tmp_path, "127.0.0.1:1"))
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout


@pytest.mark.slow
async def test_without_the_search_attributes_everything_still_runs_and_says_so_once(tmp_path):
    plain = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL), data_converter=pydantic_data_converter, ui=False
    )
    try:
        env = atelier_env(tmp_path, address_of(plain))
        worker = start_worker(env, tmp_path / "worker.log")
        try:
            made = run_cli("image", "a paper boat", "--max-iterations", "1", "--id", "plain-image", env=env)
            listed = run_cli("runs", "--pipeline", "image", "--json", env=env)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    finally:
        await plain.shutdown()
    assert made.returncode == 0, made.stderr
    assert made.stderr.count("lacks Atelier's search attributes") == 1
    assert (tmp_path / "worker.log").read_text().count("lacks Atelier's search attributes") == 1
    assert listed.returncode == 0 and listed.stderr.count("lacks Atelier's search attributes") == 1
    rows = json.loads(listed.stdout)
    assert [(r["workflow_id"], r["pipeline"], r["state"]) for r in rows] == [("plain-image", "image", "COMPLETED")]

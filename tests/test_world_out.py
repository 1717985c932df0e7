"""`world --out` / `result --out` copy a world's files under the folder and nowhere else: an artifact key
with `..` (S3 keys may hold any bytes) is skipped, and the CLI says so in one line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from kit.storage import LocalStore
from models.artifacts import ArtifactRef
from models.settings import WORKFLOW_QUEUE
from models.world import (
    CallUsage,
    CharacterManifest,
    PostIdea,
    PostRecord,
    WorldManifest,
    WorldResult,
    WorldState,
    WorldStatus,
)
from tests.conftest import address_of, atelier_env, cli_main


@workflow.defn(name="WorldWorkflow")
class FinishedWorld:
    """A world that has finished with the result it is given (its keys written by someone else)."""

    @workflow.run
    async def run(self, result: WorldResult) -> WorldResult:
        return result

    @workflow.query
    def status(self) -> WorldStatus | None:
        return None


async def put(store: LocalStore, key: str, text: str) -> ArtifactRef:
    return await store.put(key, text.encode(), "application/json")


async def test_result_out_writes_nothing_outside_the_folder(dev_env, tmp_path: Path):
    env = atelier_env(tmp_path, address_of(dev_env))
    store = LocalStore(tmp_path / "data" / "artifacts")  # the store the CLI's settings name
    prefix = "worlds/w-evil/"
    world = await put(store, prefix + "world.json", "{}")
    post = await put(store, prefix + "characters/ann/posts/001.json", '{"n": 1}')
    # inside the store, but outside `--out` once the world's prefix is taken off
    sibling = await put(store, prefix + "../w-evil-escape.json", '{"escaped": 1}')
    deeper = await put(store, prefix + "../../escape-deeper.json", '{"escaped": 2}')
    idea = PostIdea(topic="t", brief="b", emotional_tone="calm", post_type="text", has_image=False)
    manifest = WorldManifest(
        world_id="w-evil",
        prompt="p",
        state=WorldState.COMPLETED,
        world=world,
        world_name="Evil",
        failures=[],
        calls=CallUsage(),
        characters=[
            CharacterManifest(
                world_id="w-evil",
                username="ann",
                display_name="Ann",
                role_in_world="r",
                profile=sibling,
                posts=[PostRecord(number=1, idea=idea, post=post), PostRecord(number=2, idea=idea, post=deeper)],
            )
        ],
    )
    result = WorldResult(
        world_id="w-evil",
        state=WorldState.COMPLETED,
        manifest=await put(store, prefix + "manifest.json", manifest.model_dump_json()),
        gallery=None,
        status=WorldStatus(world_id="w-evil", state=WorldState.COMPLETED),
    )
    out = tmp_path / "out"
    outside = [tmp_path / "w-evil-escape.json", tmp_path.parent / "escape-deeper.json"]
    async with Worker(
        dev_env.client,
        task_queue=WORKFLOW_QUEUE,
        workflows=[FinishedWorld],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await dev_env.client.execute_workflow(FinishedWorld.run, result, id="w-evil", task_queue=WORKFLOW_QUEUE)
        done = await asyncio.to_thread(cli_main, "result", "w-evil", "--out", str(out), env=env)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["world_id"] == "w-evil"
    assert not any(path.exists() for path in outside), "a file was written outside --out"
    assert (out / "world.json").is_file() and (out / "characters/ann/posts/001.json").is_file()
    assert (out / "manifest.json").is_file()
    lines = [line for line in done.stderr.splitlines() if ".." in line]
    assert len(lines) == 1, done.stderr
    assert "2 files" in lines[0] and str(out) in lines[0] and "../w-evil-escape.json" in lines[0], lines[0]

"""Worker Versioning: a rollout under a running world and a running conversation.

v1 workers run a world (held mid-way) and a conversation; v2 workers start with workflow code that cannot
replay v1 histories (a timer v1 never had); v2 is made current with the `temporal` CLI as the README says.
The v1 world finishes on v1 without a non-determinism error, a new world goes to v2, and the conversation
moves to v2 at its continue-as-new with every turn kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore
from models.conversation import ConversationConfig, ConversationStart
from models.settings import WORKFLOW_QUEUE, Settings
from models.world import WorldJob, WorldState
from tests.conftest import ROOT, TEMPORAL, address_of, eventually
from tests.rollout_v2 import ConversationWorkflowV2, WorldWorkflowV2
from workers.registry import QUEUES, WORKFLOWS, build_workers
from workers.versioning import default_build_id, workflow_code
from workflows.conversation import ConversationWorkflow
from workflows.world import WorldWorkflow

DEPLOYMENT = "atelier-rollout"


V2_WORKFLOWS = [
    WorldWorkflowV2,
    ConversationWorkflowV2,
    *(w for w in WORKFLOWS if w not in {WorldWorkflow, ConversationWorkflow}),
]


class HeldProvider(OfflineProvider):
    """The offline provider, holding post texts until the test lets them through (the world stays mid-way)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def structured(self, schema, instructions, prompt, context=None, max_cost_usd=None, notes=None, stream=None):
        if schema.__name__ == "PostDetail":
            await self.release.wait()
        return await super().structured(schema, instructions, prompt, context, max_cost_usd, notes, stream)


def settings_for(build_id: str) -> Settings:
    return Settings(ATELIER_DEPLOYMENT=DEPLOYMENT, ATELIER_BUILD_ID=build_id, LLM_API_KEY=None)


async def set_current(address: str, build_id: str) -> None:
    """The README's rollout step, with the real CLI; refused until every queue of the version has polled."""
    await eventually(lambda: made_current(address, build_id), 60, f"{build_id} to become current")


async def made_current(address: str, build_id: str) -> bool:
    done = subprocess.run(
        [str(TEMPORAL), "worker", "deployment", "set-current-version", "--address", address,
         "--deployment-name", DEPLOYMENT, "--build-id", build_id, "--yes"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.returncode == 0


async def registered(address: str, build_id: str) -> bool:
    """Whether the deployment lists the build (its workers have polled)."""
    done = subprocess.run(
        [str(TEMPORAL), "worker", "deployment", "describe", "--address", address, "--name", DEPLOYMENT],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return done.returncode == 0 and build_id in done.stdout


async def build_of(handle: WorkflowHandle) -> str:
    described = await handle.describe()
    info = described.raw_description.workflow_execution_info.versioning_info
    return info.deployment_version.build_id


async def test_a_new_version_rolls_out_under_a_running_world_and_conversation(dev_env, tmp_path):
    client, address = dev_env.client, address_of(dev_env)
    store = LocalStore(tmp_path)
    held = HeldProvider()
    async with contextlib.AsyncExitStack() as stack:
        for worker in build_workers(client, list(QUEUES), GuardedProvider(held, None), store, settings_for("v1")):
            await stack.enter_async_context(worker)

        await eventually(lambda: registered(address, "v1"), 30, "the v1 workers to register their version")
        await set_current(address, "v1")

        job = WorldJob(
            prompt="A lantern town of glass blowers", characters=2, posts_per_character=2, images=False, scoring=False
        )
        chat = await client.start_workflow(
            ConversationWorkflow.run,
            ConversationStart(config=ConversationConfig(continue_after_turns=2, retrieval_wait_s=5)),
            id="chat-rollout",
            task_queue=WORKFLOW_QUEUE,
        )
        held.release.set()  # the first turn's phases ask for no post: let the conversation answer
        first = await asyncio.wait_for(chat.execute_update(ConversationWorkflow.ask, "I keep bees in Lisbon."), 60)
        held.release.clear()  # from now on the world's posts wait: it is mid-way when v2 arrives
        old_world = await client.start_workflow(WorldWorkflow.run, job, id="world-v1", task_queue=WORKFLOW_QUEUE)

        async def world_is_writing_posts() -> bool:
            status = await old_world.query(WorldWorkflow.status)
            return status is not None and status.posts.planned > 0

        await eventually(world_is_writing_posts, 60, "the v1 world to plan its posts")
        first_run = (await chat.describe()).run_id
        assert await build_of(old_world) == "v1" and await build_of(chat) == "v1"

        for worker in build_workers(
            client, list(QUEUES), GuardedProvider(OfflineProvider(), None), store, settings_for("v2"), V2_WORKFLOWS
        ):
            await stack.enter_async_context(worker)

        await eventually(lambda: registered(address, "v2"), 30, "the v2 workers to register their version")
        await set_current(address, "v2")
        assert (await old_world.describe()).status == WorkflowExecutionStatus.RUNNING, "v1 world still mid-way"

        async def v1_still_running() -> bool:  # the README's drain check
            query = f'TemporalWorkerDeploymentVersion = "{DEPLOYMENT}:v1" AND ExecutionStatus = "Running"'
            return "world-v1" in {w.id async for w in client.list_workflows(query)}

        await eventually(v1_still_running, 20, "the v1 world listed as running on v1")

        new_world = await client.start_workflow(WorldWorkflow.run, job, id="world-v2", task_queue=WORKFLOW_QUEUE)
        assert (await asyncio.wait_for(new_world.result(), 120)).state == WorldState.COMPLETED
        assert await build_of(new_world) == "v2", "a new run goes to the current version"

        # the second turn ends the first run (continue_after_turns=2): the next run starts on v2
        second = await asyncio.wait_for(chat.execute_update(ConversationWorkflow.ask, "Where are my bees?"), 60)
        third = await asyncio.wait_for(chat.execute_update(ConversationWorkflow.ask, "What did I say first?"), 60)

        held.release.set()
        finished = await asyncio.wait_for(old_world.result(), 120)
        assert finished.state == WorldState.COMPLETED and finished.status.posts.created == 4
        assert await build_of(old_world) == "v1", "the running world stayed on v1"
        old_history = await old_world.fetch_history()
        assert not any(e.HasField("workflow_task_failed_event_attributes") for e in old_history.events)
        v1_replay = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
        v2_replay = Replayer(workflows=V2_WORKFLOWS, data_converter=pydantic_data_converter)
        assert (await v1_replay.replay_workflow(old_history, raise_on_replay_failure=False)).replay_failure is None
        broken = await v2_replay.replay_workflow(old_history, raise_on_replay_failure=False)
        assert broken.replay_failure is not None, "v2 could not have run the v1 world: pinning is what saved it"

        latest = client.get_workflow_handle(chat.id)
        assert (await latest.describe()).run_id != first_run and await build_of(latest) == "v2"
        first_history = await client.get_workflow_handle(chat.id, run_id=first_run).fetch_history()
        assert not any(e.HasField("workflow_task_failed_event_attributes") for e in first_history.events)
        history = await latest.query(ConversationWorkflow.history)
        assert history is not None and history.turns_total == 3
        assert [t.user for t in history.recent] == [
            "I keep bees in Lisbon.",
            "Where are my bees?",
            "What did I say first?",
        ]
        assert first.turn == 1 and second.turn == 2 and third.turn == 3
        await latest.signal(ConversationWorkflow.end)


def test_the_default_build_id_follows_the_workflow_code():
    build = default_build_id()
    version, digest = build.rsplit("-", 1)
    assert version == "0.1.0" and len(digest) == 12 and default_build_id() == build
    assert Settings(ATELIER_DEPLOYMENT="atelier").build_id is None, "resolved by the workers, not fixed in settings"


def test_the_build_id_changes_with_any_code_a_workflow_runs_and_only_that(tmp_path):
    """Workflow decisions also run in `models/` (cost limits' floors, meme scoring, safe usernames → child ids): a
    change there is new workflow code. A change to code no workflow imports (the CLI) is not."""
    root = tmp_path / "atelier"
    for package in ("workflows", "models", "activities", "starter"):
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    files = {path.relative_to(root).as_posix() for path in workflow_code(root)}
    assert {"workflows/world.py", "models/usage.py", "models/world.py", "models/meme.py"} <= files
    assert not any(name.startswith("starter/") for name in files)
    before = default_build_id(root)
    (root / "starter" / "cli.py").write_text((root / "starter" / "cli.py").read_text() + "\n# a CLI change\n")
    assert default_build_id(root) == before, "code no workflow runs leaves the build id alone"
    usage = root / "models" / "usage.py"
    changed = usage.read_text().replace("min(floor, self.quote(kind))", "max(floor, self.quote(kind))")
    assert changed != usage.read_text(), "the edit must change the code (else this measures nothing)"
    usage.write_text(changed)
    assert default_build_id(root) != before, "a cost-limit change is a workflow change"

"""A cancel stops the spending: each pipeline cancelled at each kind of step ends CANCELLED (the image loop:
with its best so far) and starts no paid call after the cancel.

Two views of "after": the histories (no paid activity scheduled, no character started, once the run or
its child was asked to cancel: exact) and the provider (no model call begins a while after the cancel).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle, WorkflowUpdateStage

from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore
from models.conversation import ConversationConfig, ConversationStart
from models.image import ImageJob, ImageOptions, StopReason
from models.meme import MemeFormat, MemeJob, MemePhase
from models.settings import IMAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE
from models.world import CallUsage, CharacterJob, CharacterSeed, WorldJob
from tests.conftest import eventually, running_workers
from workflows.character import CharacterWorkflow
from workflows.conversation import ConversationWorkflow
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.meme import MemeWorkflow
from workflows.world import WorldWorkflow

PAID_QUEUES = {TEXT_QUEUE, IMAGE_QUEUE}
LATENCY_S = 1.0  # every model call takes this long: a cancel lands while one is in flight
GRACE_S = 3.0  # a call handed to the worker just before the cancel may still begin within this


class Spending(OfflineProvider):
    """The offline provider, noting when each paid call begins and which are in flight."""

    def __init__(self) -> None:
        super().__init__(latency_s=LATENCY_S)
        self.began: list[tuple[str, float]] = []
        self.in_flight: Counter[str] = Counter()

    async def _paid(self, what: str, call: Any) -> Any:
        self.began.append((what, time.monotonic()))
        self.in_flight[what] += 1
        try:
            return await call
        finally:
            self.in_flight[what] -= 1

    async def structured(self, schema, *args, **kwargs):  # type: ignore[no-untyped-def]
        return await self._paid(schema.__name__, super().structured(schema, *args, **kwargs))

    async def generate_image(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return await self._paid("image", super().generate_image(*args, **kwargs))

    async def evaluate_image(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return await self._paid("evaluation", super().evaluate_image(*args, **kwargs))

    async def refine_prompt(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return await self._paid("refinement", super().refine_prompt(*args, **kwargs))

    def begun_after(self, moment: float) -> list[str]:
        return [what for what, at in self.began if at > moment]


class HeldUploads(LocalStore):
    """A store whose public uploads (memes/…) never finish: a meme stays in its upload step."""

    async def put(self, key: str, data: bytes, content_type: str):  # type: ignore[no-untyped-def]
        if key.startswith("memes/"):
            await asyncio.Event().wait()
        return await super().put(key, data, content_type)


async def spending_after_cancel(client: Client, workflow_id: str) -> list[str]:
    """Paid steps scheduled and children started after a run (or any of its children) was asked to cancel."""
    late, pending = [], [workflow_id]
    while pending:
        current = pending.pop()
        cancel_asked = False
        for event in (await client.get_workflow_handle(current).fetch_history()).events:
            if event.HasField("workflow_execution_cancel_requested_event_attributes"):
                cancel_asked = True
            elif event.HasField("activity_task_scheduled_event_attributes"):
                scheduled = event.activity_task_scheduled_event_attributes
                if cancel_asked and scheduled.task_queue.name in PAID_QUEUES:
                    late.append(f"{current}: {scheduled.activity_type.name}")
            elif event.HasField("start_child_workflow_execution_initiated_event_attributes"):
                child = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
                pending.append(child)
                if cancel_asked:
                    late.append(f"{current}: started {child}")
    return late


async def cancel_and_check(client: Client, handle: WorkflowHandle, spy: Spending) -> WorkflowExecutionStatus:
    """Cancel the run; once it has closed, nothing paid may have started after the cancel."""
    await handle.cancel()
    cancelled_at = time.monotonic()
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), 90)
    assert await spending_after_cancel(client, handle.id) == []
    await asyncio.sleep(0.5)  # anything still to begin would begin now
    assert spy.begun_after(cancelled_at + GRACE_S) == []
    return (await handle.describe()).status


def in_flight(spy: Spending, what: str):
    return lambda: spy.in_flight[what] > 0


@pytest.mark.parametrize("moment", ["CharacterBatch", "PostDetail"], ids=["in casting", "in the fan-out"])
async def test_a_cancelled_world_stops_spending(module_dev_env, tmp_path, moment):
    client, spy = module_dev_env.client, Spending()
    job = WorldJob(
        prompt="A salt-flat railway town",
        characters=12,
        posts_per_character=6,
        images=False,
        character_batch_size=4,
        max_parallel_characters=6,
        post_batch_size=2,
    )
    async with running_workers(client, spy, LocalStore(tmp_path)):
        handle = await client.start_workflow(
            WorldWorkflow.run, job, id=f"world-{uuid.uuid4().hex[:8]}", task_queue=WORKFLOW_QUEUE
        )
        await eventually(in_flight(spy, moment), 60, f"a {moment} call in flight")
        assert await cancel_and_check(client, handle, spy) == WorkflowExecutionStatus.CANCELED
        status = await handle.query(WorldWorkflow.status)
        assert status and status.state.value == "CANCELLED"


async def test_a_character_cancelled_mid_posts_stops_spending(module_dev_env, tmp_path):
    client, spy = module_dev_env.client, Spending()
    seed = CharacterSeed(
        username="ada_signal",
        display_name="Ada",
        role_in_world="signalwoman",
        personality_traits=["patient"],
        interests=["trains"],
        posts_count=12,
    )
    job = CharacterJob(
        world_id="world-solo",
        world_text="A salt-flat railway town.",
        visual_style="sun-bleached photographs",
        seed=seed,
        images=False,
        scoring=False,
        post_batch_size=3,
        allowance=CallUsage(llm_calls=40, image_calls=0),
    )
    async with running_workers(client, spy, LocalStore(tmp_path)):
        handle = await client.start_workflow(
            CharacterWorkflow.run, job, id=f"character-{uuid.uuid4().hex[:8]}", task_queue=WORKFLOW_QUEUE
        )
        await eventually(in_flight(spy, "PostDetail"), 60, "a post being written")
        assert await cancel_and_check(client, handle, spy) == WorkflowExecutionStatus.CANCELED


@pytest.mark.parametrize(
    "phase",
    [MemePhase.GENERATING_TEXT, MemePhase.SCORING, MemePhase.REFINING, MemePhase.GENERATING_IMAGE, MemePhase.UPLOADING],
)
async def test_a_cancelled_meme_stops_spending(module_dev_env, tmp_path, phase):
    client, spy = module_dev_env.client, Spending()
    job = MemeJob(topic=f"cancelled while {phase.value}", format=MemeFormat.DRAKE, target_score=1.0, max_refinements=1)
    async with running_workers(client, spy, HeldUploads(tmp_path)):
        handle = await client.start_workflow(
            MemeWorkflow.run, job, id=f"meme-{uuid.uuid4().hex[:8]}", task_queue=WORKFLOW_QUEUE
        )

        async def in_phase() -> bool:
            return (await handle.query(MemeWorkflow.status)).phase == phase

        await eventually(in_phase, 60, f"the meme {phase.value}")
        assert await cancel_and_check(client, handle, spy) == WorkflowExecutionStatus.CANCELED


async def test_a_conversation_cancelled_mid_turn_stops_spending(module_dev_env, tmp_path):
    client, spy = module_dev_env.client, Spending()
    async with running_workers(client, spy, LocalStore(tmp_path)):
        handle = await client.start_workflow(
            ConversationWorkflow.run,
            ConversationStart(config=ConversationConfig()),
            id=f"conv-{uuid.uuid4().hex[:8]}",
            task_queue=WORKFLOW_QUEUE,
        )
        await handle.start_update(
            ConversationWorkflow.ask, "What do the trains carry?", wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        await eventually(lambda: sum(spy.in_flight.values()) > 0, 60, "a phase of the turn in flight")
        assert await cancel_and_check(client, handle, spy) == WorkflowExecutionStatus.CANCELED


async def test_an_image_loop_cancelled_mid_generation_keeps_its_best_and_stops_spending(module_dev_env, tmp_path):
    client, spy = module_dev_env.client, Spending()
    job = ImageJob(
        prompt="a lighthouse at dusk",
        options=ImageOptions(background="opaque"),
        max_iterations=4,
        threshold=100,
        technical_weight=0,
    )
    async with running_workers(client, spy, LocalStore(tmp_path)):
        handle = await client.start_workflow(
            ImageRefinementWorkflow.run, job, id=f"image-{uuid.uuid4().hex[:8]}", task_queue=WORKFLOW_QUEUE
        )
        await eventually(
            lambda: [w for w, _ in spy.began].count("image") == 2 and spy.in_flight["image"], 60, "a 2nd picture"
        )
        await handle.cancel()
        cancelled_at = time.monotonic()
        result = await asyncio.wait_for(handle.result(), 90)
        assert result.stopped_because == StopReason.CANCELLED and [it.number for it in result.iterations] == [1]
        assert await spending_after_cancel(client, handle.id) == []
        await asyncio.sleep(0.5)
        assert spy.begun_after(cancelled_at + GRACE_S) == []

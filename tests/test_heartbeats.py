"""One heartbeat stream per activity: inner phases change what it carries, never start a second stream, and
never overwrite the malformed-reply count that carries over to the next attempt."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from temporalio import activity, workflow
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from activities.errors import invalid_output
    from activities.heartbeat import heartbeating, pulse_throughout
    from models.settings import Settings
    from workers.registry import activity_worker
    from workflows.options import storage_call


async def test_one_stream_carries_the_phase_and_the_count_forward():
    beats: list[dict] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details[0])

    async def work() -> str:
        async with pulse_throughout(every=0.05):
            async with heartbeating("storing the picture"):
                await asyncio.sleep(0.2)
                error = invalid_output("Evaluation from gpt-4o", "not JSON")
                await asyncio.sleep(0.2)  # the stream goes on beating after the count went up
            await asyncio.sleep(0.1)
        return error.message

    message = await env.run(work)
    assert "(1/3)" in message
    phases = [b["phase"] for b in beats]
    assert "storing the picture" in phases and phases[-1] != "storing the picture", "the inner phase ends"
    counted = [i for i, b in enumerate(beats) if b["invalid_outputs"] == 1]
    assert counted and all(b["invalid_outputs"] == 1 for b in beats[counted[0] :]), "never overwritten by 0"
    assert len(beats) <= 18, f"one stream beating every 0.05 s, not two ({len(beats)} beats in 0.5 s)"


@activity.defn
async def hold_the_loop(seconds: float) -> int:
    """Work that blocks the event loop (as tensor work or a folder walk would if run on it), twice."""
    for _ in range(2):
        time.sleep(seconds)
        await asyncio.sleep(0.1)
    return activity.info().attempt


@workflow.defn
class StallingWorkflow:
    @workflow.run
    async def run(self, queue: str) -> list[int]:
        options = {**storage_call("hold the loop"), "task_queue": queue}
        calls = [workflow.execute_activity(hold_the_loop, 3.0, **options) for _ in range(4)]
        return list(await asyncio.gather(*calls))


@pytest.mark.slow
async def test_a_stalled_event_loop_does_not_time_out_the_attempts(dev_env):
    """Four slots each stalling their worker's event loop for 3 s, twice: no beat leaves the worker for
    ~12 s at a time. With an 8 s heartbeat timeout every attempt timed out and ran (and paid) again; the
    workers' heartbeat timeout has the slack and each call runs once."""
    queue = f"stall-{uuid.uuid4().hex[:8]}"
    worker = activity_worker(dev_env.client, queue, [hold_the_loop], Settings(), max_concurrent_activities=4)
    flows = Worker(dev_env.client, task_queue=f"{queue}-wf", workflows=[StallingWorkflow])
    async with worker, flows:
        attempts = await dev_env.client.execute_workflow(
            StallingWorkflow.run, queue, id=f"stall-{queue}", task_queue=f"{queue}-wf"
        )
    assert attempts == [1, 1, 1, 1], f"attempts timed out on heartbeats and ran again: {attempts}"

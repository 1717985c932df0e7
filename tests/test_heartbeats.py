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
    from activities.heartbeat import HEARTBEAT_EVERY_S, heartbeating, pulse_throughout
    from models.settings import Settings
    from workers.registry import HEARTBEAT_THROTTLE, activity_worker
    from workflows.options import image_call, scoring_call, storage_call, text_call


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
async def hold_the_loop(seconds: float, hold: bool) -> int:
    """Work that blocks the event loop (as tensor work or a folder walk would if run on it) for `seconds`,
    twice; or, beside it, work that waits as long without blocking (its beats are held up all the same)."""
    for _ in range(2):
        if hold:
            time.sleep(seconds)
            await asyncio.sleep(0.1)
        else:
            await asyncio.sleep(seconds + 0.1)
    return activity.info().attempt


STALL_S = 5.0  # what an attempt must survive: the event loop held this long with no beat leaving the worker
SLOTS = 4


@workflow.defn
class StallingWorkflow:
    @workflow.run
    async def run(self, queue: str) -> list[int]:
        options = {**storage_call("hold the loop"), "task_queue": queue}
        calls = [workflow.execute_activity(hold_the_loop, args=[STALL_S, n == 0], **options) for n in range(SLOTS)]
        return list(await asyncio.gather(*calls))


@pytest.mark.slow
async def test_a_stalled_event_loop_does_not_time_out_the_attempts(dev_env):
    """One of four slots holds its worker's event loop for 5 s, twice: no beat of any of the four leaves the
    worker for 5 s at a time (measured). The heartbeat timeout (8 s, with a beat every second) has the slack,
    and each call runs once."""
    queue = f"stall-{uuid.uuid4().hex[:8]}"
    worker = activity_worker(dev_env.client, queue, [hold_the_loop], Settings(), max_concurrent_activities=SLOTS)
    flows = Worker(dev_env.client, task_queue=f"{queue}-wf", workflows=[StallingWorkflow])
    longest = 0.0  # the longest the worker's event loop went without running anything else

    async def watch_the_loop() -> None:
        nonlocal longest
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.05)
            longest = max(longest, time.monotonic() - before)

    watching = asyncio.create_task(watch_the_loop())
    async with worker, flows:
        attempts = await dev_env.client.execute_workflow(
            StallingWorkflow.run, queue, id=f"stall-{queue}", task_queue=f"{queue}-wf"
        )
    watching.cancel()
    assert longest >= STALL_S - 0.5, f"the loop was held {longest:.1f} s at most: no stall to survive"
    assert attempts == [1] * SLOTS, f"attempts timed out on heartbeats and ran again: {attempts}"


def test_a_killed_workers_call_is_retried_within_ten_seconds_and_a_stall_is_survived():
    """Every kind of activity is given up on 8 s after its last beat and retried a second later (a killed
    worker's call runs elsewhere within 10 s), and the timeout leaves room for a 5 s stall on top of the
    beat interval and the throttle that sends it on."""
    options = [text_call("t").options, image_call("i").options, storage_call("s"), scoring_call("c")]
    for each in options:
        first_retry = each["retry_policy"].initial_interval
        assert (each["heartbeat_timeout"] + first_retry).total_seconds() <= 10, each["summary"]
        slack = each["heartbeat_timeout"].total_seconds() - HEARTBEAT_EVERY_S - HEARTBEAT_THROTTLE.total_seconds()
        assert slack >= STALL_S, each["summary"]

"""One heartbeat stream per activity: inner phases change what it carries, never start a second stream, and
never overwrite the malformed-reply count that carries over to the next attempt."""

from __future__ import annotations

import asyncio

from temporalio.testing import ActivityEnvironment

from activities.errors import invalid_output
from activities.heartbeat import heartbeating, pulse_throughout


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

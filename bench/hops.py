"""Bare Temporal dispatch latency: sequential no-op activities, on another queue and on the same one."""

from __future__ import annotations

import time
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker


@activity.defn(name="bench_noop")
async def noop(value: int) -> int:
    return value + 1


@workflow.defn(sandboxed=False)
class HopsWorkflow:
    @workflow.run
    async def run(self, args: tuple[int, str]) -> int:
        count, queue = args
        value = 0
        for _ in range(count):
            value = await workflow.execute_activity(
                noop, value, task_queue=queue, start_to_close_timeout=timedelta(seconds=30)
            )
        return value


async def hop_ms(client: Client, count: int = 30) -> dict[str, float]:
    """Milliseconds per sequential activity, dispatched to another queue vs the workflow's own."""
    results = {}
    async with (
        Worker(client, task_queue="bench-hops-wf", workflows=[HopsWorkflow], activities=[noop]),
        Worker(client, task_queue="bench-hops-act", activities=[noop]),
    ):
        for name, queue in (("other queue", "bench-hops-act"), ("same queue", "bench-hops-wf")):
            await client.execute_workflow(
                HopsWorkflow.run, (3, queue), id=f"hops-warm-{queue}", task_queue="bench-hops-wf"
            )
            started = time.perf_counter()
            await client.execute_workflow(
                HopsWorkflow.run, (count, queue), id=f"hops-{queue}", task_queue="bench-hops-wf"
            )
            results[name] = (time.perf_counter() - started) / count * 1000
    return results

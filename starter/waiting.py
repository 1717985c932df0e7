"""Say when paid calls are waiting on a rate limit, so a slow run never looks stuck.

The Temporal server holds a paid-call queue's tasks back at its rate limit; its backlog (an
approximate count, refreshed every few seconds) is the number of calls waiting on that limit.
"""

from __future__ import annotations

import time

from temporalio.api.enums.v1 import RateLimitSource, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, DescribeTaskQueueResponse
from temporalio.client import Client
from temporalio.service import RPCError

from models.settings import IMAGE_QUEUE, TEXT_QUEUE

QUEUES = {"text": TEXT_QUEUE, "image": IMAGE_QUEUE}


def waiting_line(kind: str, backlog: int, requests_per_second: float | None) -> str | None:
    """'waiting on image rate limit (20/min) · 12 queued', or None when nothing waits."""
    if backlog <= 0:
        return None
    if requests_per_second:
        return f"waiting on {kind} rate limit ({requests_per_second * 60:g}/min) · {backlog} queued"
    return f"{backlog} {kind} calls queued for a free worker slot"


async def describe_queue(client: Client, queue: str) -> DescribeTaskQueueResponse:
    """An activity queue's backlog and effective rate limit, as the server sees them."""
    return await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_stats=True,
        )
    )


async def waiting(client: Client) -> list[str]:
    """One line per paid-call queue that has calls waiting; empty when none do (or the server cannot say)."""
    lines = []
    for kind, queue in QUEUES.items():
        try:
            described = await describe_queue(client, queue)
        except RPCError:
            continue
        effective = described.effective_rate_limit
        limited = described.HasField("effective_rate_limit") and effective.rate_limit_source in (
            RateLimitSource.RATE_LIMIT_SOURCE_WORKER,
            RateLimitSource.RATE_LIMIT_SOURCE_API,
        )
        limit = effective.requests_per_second if limited else 0
        if line := waiting_line(kind, described.stats.approximate_backlog_count, limit or None):
            lines.append(line)
    return lines


class WaitingNotes:
    """`waiting()` for a live display, asked at most every `every_s` seconds."""

    def __init__(self, client: Client, every_s: float = 3.0) -> None:
        self.client = client
        self.every_s = every_s
        self.lines: list[str] = []
        self._asked = 0.0

    async def current(self) -> list[str]:
        if time.monotonic() - self._asked >= self.every_s:
            self._asked = time.monotonic()
            self.lines = await waiting(self.client)
        return self.lines

"""Activity options shared by the workflows: bounded time, heartbeats, Temporal-owned retries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.settings import PROVIDER_QUEUE, SCORING_QUEUE
    from models.usage import Ledger, Metered, V

# Activities heartbeat every 2 s; a worker that dies is noticed after 8 s and its call retried
# about a second later, instead of waiting for the start-to-close timeout.
HEARTBEAT_TIMEOUT = timedelta(seconds=8)


def model_call(minutes: int, attempts: int = 8) -> dict[str, Any]:
    """Options for one model call on the provider queue."""
    return {
        "task_queue": PROVIDER_QUEUE,
        "start_to_close_timeout": timedelta(minutes=minutes),
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(minutes=1),
            maximum_attempts=attempts,
        ),
    }


def bookkeeping() -> dict[str, Any]:
    """Options for storage-only steps (manifests): heartbeating, retried until they succeed."""
    return {
        "task_queue": PROVIDER_QUEUE,
        "start_to_close_timeout": timedelta(minutes=5),
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,
        "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
    }


def scoring_call() -> dict[str, Any]:
    """Options for an activity on the scoring queue (batched PyTorch work)."""
    return model_call(5, attempts=5) | {"task_queue": SCORING_QUEUE}


async def metered_call(ledger: Ledger, activity: Callable[..., Awaitable[Metered[V]]], arg: Any, **options: Any) -> V:
    """Run an activity that returns `Metered[V]`: its usage goes into the ledger, its value comes back."""
    return ledger.take(await workflow.execute_activity_method(activity, arg, **options))

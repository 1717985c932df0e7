"""Activity options shared by the workflows: bounded time, heartbeats, Temporal-owned retries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.settings import PROVIDER_QUEUE


def model_call(minutes: int, attempts: int = 8) -> dict[str, Any]:
    """Options for one model call on the provider queue."""
    return {
        "task_queue": PROVIDER_QUEUE,
        "start_to_close_timeout": timedelta(minutes=minutes),
        "heartbeat_timeout": timedelta(seconds=15),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=2),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(minutes=1),
            maximum_attempts=attempts,
        ),
    }


def bookkeeping() -> dict[str, Any]:
    """Options for storage-only steps (manifests): quick, retried until they succeed."""
    return {
        "task_queue": PROVIDER_QUEUE,
        "start_to_close_timeout": timedelta(minutes=2),
        "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
    }

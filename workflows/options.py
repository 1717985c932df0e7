"""Activity options shared by the workflows: bounded time, heartbeats, Temporal-owned retries, and the
summary each step shows in the Temporal UI (required: every step says what it is)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.settings import IMAGE_QUEUE, MAX_CALL_DEADLINE_S, SCORING_QUEUE, STORAGE_QUEUE, TEXT_QUEUE
    from models.usage import CallKind

# Every activity heartbeats every second for as long as it runs (the workers' HeartbeatThroughout
# interceptor), and the workers send each beat on within a second (an explicit throttle: the SDK's default is
# 0.8 x the timeout). An attempt survives ~7 s without a beat (a stalled event loop of 5 s and more, a slow
# disk); a worker that dies is noticed 8 s after its last beat (7-8 s after it died) and its call retried a
# second later, so a killed worker's call runs elsewhere within 10 s.
HEARTBEAT_TIMEOUT = timedelta(seconds=8)
STORAGE_DEADLINE = timedelta(minutes=10)  # a storage step still failing after this is reported, not retried
# One attempt of a paid call may wait on the provider's rate limit (heartbeating) up to the worker's
# per-call deadline; a hung request is cut by the client timeout, a dead worker by the heartbeat timeout.
PAID_ATTEMPT_LIMIT = timedelta(seconds=MAX_CALL_DEADLINE_S)
SCORING_DEADLINE = timedelta(minutes=10)  # a scoring call, queued behind a busy worker's batches and run


@dataclass(frozen=True)
class PaidCall:
    """A paid model call: its kind (what the budget counts and reserves for it) and its activity options."""

    kind: CallKind
    options: dict[str, Any]

    def with_options(self, **options: Any) -> PaidCall:
        return PaidCall(self.kind, self.options | options)


def _paid_call(kind: CallKind, queue: str, attempts: int, summary: str) -> PaidCall:
    return PaidCall(
        kind,
        {
            "summary": summary,
            "task_queue": queue,
            "start_to_close_timeout": PAID_ATTEMPT_LIMIT,
            "heartbeat_timeout": HEARTBEAT_TIMEOUT,
            "retry_policy": RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(minutes=1),
                maximum_attempts=attempts,
            ),
        },
    )


def text_call(summary: str, attempts: int = 8) -> PaidCall:
    """One paid text call (chat, structured output, evaluation) on the rate-limited text queue.

    `attempts` bounds real failures; waiting on a rate limit happens inside an attempt and uses none.
    """
    return _paid_call("text", TEXT_QUEUE, attempts, summary)


def image_call(summary: str, attempts: int = 8) -> PaidCall:
    """One paid image generation on the rate-limited image queue."""
    return _paid_call("image", IMAGE_QUEUE, attempts, summary)


def storage_call(summary: str, minutes: int = 5, deadline: timedelta = STORAGE_DEADLINE) -> dict[str, Any]:
    """Options for a step that only touches storage (references, manifests, render, upload, cache):
    retried, but bounded, so a permanent storage error (bucket gone, disk full) ends in an error the
    pipeline can report instead of a run that waits forever."""
    return {
        "summary": summary,
        "task_queue": STORAGE_QUEUE,
        "start_to_close_timeout": timedelta(minutes=minutes),
        "schedule_to_close_timeout": deadline,
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=10
        ),
    }


def scoring_call(summary: str, deadline: timedelta = SCORING_DEADLINE) -> dict[str, Any]:
    """Options for an activity on the scoring queue (batched PyTorch work), run through
    `workflows.scoring.ScoringQueue`, which first asks whether any scoring worker polls (scoring is
    optional). A busy worker is waited for: the call, queued and run, takes at most `deadline`; then it
    fails and the pipeline goes on without its score (noted)."""
    return {
        "summary": summary,
        "task_queue": SCORING_QUEUE,
        "schedule_to_close_timeout": deadline,
        "start_to_close_timeout": min(deadline, timedelta(minutes=5)),
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1), maximum_attempts=5
        ),
    }

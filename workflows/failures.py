"""What went wrong in a step, in one line: the one way workflows read an activity's or child's failure."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from models.world import Failure
    from workflows.patches import CANCEL_PATCH


def stop_if_cancelled(err: BaseException) -> None:
    """Raise `err` on when it is a cancellation: a cancel stops the run, it is never a failed step to go on
    from (spending after it is what the user asked to stop)."""
    if is_cancelled_exception(err) and workflow.patched(CANCEL_PATCH.id):
        raise err


async def cancel_started(tasks: list, err: BaseException) -> None:
    """When `err` is the run's cancellation, cancel the tasks the step had started (characters, posts being
    written) and wait for them (runs from before CANCEL_PATCH left them)."""
    if not (is_cancelled_exception(err) and workflow.patched(CANCEL_PATCH.id)):
        return
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def failure_cause(err: BaseException) -> str:
    """The message of the error that failed the step (an activity's or a child's cause), else the error's."""
    cause = getattr(err, "cause", None) or err
    message = cause.message if isinstance(cause, FailureError) else None
    return str(message or cause)


def failure(step: str, err: BaseException) -> Failure:
    """A step that failed for good, as recorded in results and manifests."""
    return Failure(step=step, error=failure_cause(err))


def safety_refusal(err: BaseException) -> tuple[str, str] | None:
    """(reason, category) when a step failed on a safety refusal (an `ApplicationError` of type Refused)."""
    cause = getattr(err, "cause", None)
    if not (isinstance(cause, ApplicationError) and cause.type == "Refused"):
        return None
    details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
    return str(details.get("reason") or cause.message), str(details.get("category") or "refusal")

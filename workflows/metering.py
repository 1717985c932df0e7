"""Paid calls against the run's dollar budget: reserve what a call may cost, run it, book what it spent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TimeoutFailure

with workflow.unsafe.imports_passed_through():
    from models.settings import IMAGE_QUEUE
    from models.usage import BudgetExhausted, Ledger, Metered, PaidRequest, Usage, V, usage_in

# A paid activity that failed for good still cost what its attempts spent at the provider: its failure (or
# its last heartbeat, when it timed out) carries that usage, and the ledger books it. Runs from before this
# patch booked successful calls only (the failures of their activities carried no usage).
BOOK_FAILED_ATTEMPTS_PATCH = "book-failed-attempts"


def call_kind(options: dict[str, Any]) -> str:
    """`image` or `text`: which reservation a paid call's options ask for."""
    return "image" if options.get("task_queue") == IMAGE_QUEUE else "text"


def failed_usage(err: ActivityError) -> Usage | None:
    """What a failed activity's attempts used at the provider, all of them together (None: nothing said)."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return usage_in(cause.details)
    if isinstance(cause, TimeoutFailure):
        return usage_in(cause.last_heartbeat_details)
    return None


async def booked(ledger: Ledger, call: Awaitable[Metered[V]]) -> Metered[V]:
    """Await a paid activity; when it fails, book what its attempts spent before the failure goes on.
    Every attempt that reached the provider is in the ledger once, whether the call succeeds (its result
    carries all attempts' usage: book it with `ledger.take`) or fails."""
    try:
        return await call
    except ActivityError as err:
        if (used := failed_usage(err)) is not None and used.models and workflow.patched(BOOK_FAILED_ATTEMPTS_PATCH):
            ledger.add(used)
        raise


async def metered_call(
    ledger: Ledger, activity: Callable[..., Awaitable[Metered[V]]], arg: PaidRequest, **options: Any
) -> V:
    """Run a paid activity that returns `Metered[V]`: what it may cost is reserved from the run's dollar
    budget first and travels with the request as the call's cap (its attempts together stay within it);
    its usage, every attempt's, goes into the ledger, failed or not, and its value comes back.

    The one way a budget runs out: raises `BudgetExhausted` (the ledger remembers it) when the budget
    cannot cover the call once the calls in flight have settled, or when the provider finds the call's
    real worst case above the cap it was given (nothing was sent)."""
    kind = call_kind(options)
    # what is in flight may come back unspent: wait for it (others waiting may take it first: check again)
    while ledger.settling and not ledger.fits(kind) and ledger.in_flight():
        await workflow.wait_condition(lambda: ledger.fits(kind) or not ledger.in_flight())
    if not ledger.fits(kind):
        ledger.exhausted = True
        free = ledger.free_usd() or 0.0
        raise BudgetExhausted(f"budget exhausted: ${free:.4f} left, an {kind} call needs ${ledger.least(kind):.4f}")
    cap = ledger.reserve(kind)
    try:
        request = arg if cap is None else arg.model_copy(update={"max_cost_usd": cap})
        return ledger.take(await booked(ledger, workflow.execute_activity_method(activity, request, **options)))
    except ActivityError as err:
        if isinstance(err.cause, ApplicationError) and err.cause.type == "BudgetExhausted":
            ledger.exhausted = True
            raise BudgetExhausted(err.cause.message) from err
        raise
    finally:
        ledger.release(cap)

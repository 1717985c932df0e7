"""Paid calls against the run's dollar budget: reserve what a call may cost, run it, book what it spent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.settings import IMAGE_QUEUE
    from models.usage import BudgetExhausted, Ledger, Metered, PaidRequest, V


def call_kind(options: dict[str, Any]) -> str:
    """`image` or `text`: which reservation a paid call's options ask for."""
    return "image" if options.get("task_queue") == IMAGE_QUEUE else "text"


async def metered_call(
    ledger: Ledger, activity: Callable[..., Awaitable[Metered[V]]], arg: PaidRequest, **options: Any
) -> V:
    """Run a paid activity that returns `Metered[V]`: what it may cost is reserved from the run's dollar
    budget first and travels with the request as the call's cap; its usage goes into the ledger and its
    value comes back.

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
        return ledger.take(await workflow.execute_activity_method(activity, request, **options))
    except ActivityError as err:
        if isinstance(err.cause, ApplicationError) and err.cause.type == "BudgetExhausted":
            ledger.exhausted = True
            raise BudgetExhausted(err.cause.message) from err
        raise
    finally:
        ledger.release(cap)

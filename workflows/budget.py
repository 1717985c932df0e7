"""A run's budget: how many model calls it may make and how many dollars it may spend, and how each paid
call is reserved, made and booked against them. Pure, deterministic Python that lives in workflow state.

The words, used with these meanings everywhere in `workflows/`:

- **budget**: what a run may spend: calls of each kind (`models.world.Budget`, a world's) and, optionally,
  dollars (`models.usage.CostLimit`, set by `starter/max_cost.py` from the user's `--max-cost`).
- **kind**: `text` or `image`. Every paid call is one or the other; the options that start it say which
  (`workflows.options.text_call` / `image_call` return a `PaidCall`).
- **quote**: the most one call of a kind may cost, its worst case (`CostLimit.quote`). **floor**: the least a
  call may be given when less than its quote is left (the provider then caps the call to fit, or refuses).
- **count**: a call counted against a call budget (`CallAllowance.count`, `WorldAccounts.count`); a call the
  dollars then refuse was not made and is counted back.
- **reserve / release**: before a call starts, the ledger sets aside its cap (its quote, or what is left down
  to the floor); the cap travels with the request, and is released when the call ends.
- **book**: what a call really used (tokens, images, dollars; every attempt's, failed ones too) goes into
  the `Ledger`.
- **share**: the calls and dollars a world starts a character with; held from `open` until the
  character's result **settles** it, when what it did not use flows back (`workflows.world_accounts`).
- **in flight**: reserved caps and open shares: budget that may still come back unspent.
- **settling**: runs since `BUDGET_PATCH` give a call less than its quote when that is all that is left, and
  wait for what is in flight before they call the budget exhausted.
- **models**: the catalog ids a run chose per kind of call (`models.catalog.ModelChoice`); the ledger names them
  on each paid request (`Ledger.naming`) for runs since `RUN_MODELS_PATCH` (before, and with none chosen: the
  worker's defaults), and `metered` hands back which model answered.
- **exhausted**: a budget refused a call: the calls (`CallAllowance.exhausted`, `WorldAccounts.out_of_calls`),
  the dollars (`Ledger.out_of_dollars`, which only the ledger says: `afford` and `afford_share` find too little
  left, `overrun` a call the provider found dearer than its cap) or a character's share
  (`WorldAccounts.shares_exhausted`). The run goes on with what it may still make, ends incomplete, and says
  `budget_exhausted`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TimeoutFailure

with workflow.unsafe.imports_passed_through():
    from models.catalog import ModelChoice
    from models.usage import (
        BudgetExhausted,
        CallKind,
        CostLimit,
        Metered,
        ModelRequest,
        PaidRequest,
        Spend,
        Usage,
        V,
        usage_in,
    )
    from models.world import CallUsage
    from workflows.options import PaidCall
    from workflows.patches import BOOK_FAILED_ATTEMPTS_PATCH, BUDGET_PATCH, BY_KIND_PATCH, RUN_MODELS_PATCH

R = TypeVar("R", bound=ModelRequest)


def run_models(models: ModelChoice | None) -> ModelChoice:
    """The models a run's calls name: its choice, in runs since `RUN_MODELS_PATCH`; before (and when it chose
    none) none, so every call goes to the worker's default for its kind."""
    if models is None or models == ModelChoice() or not workflow.patched(RUN_MODELS_PATCH.id):
        return ModelChoice()
    return models


class Ledger:
    """A run's usage so far, and its dollar budget when it has one."""

    def __init__(
        self, limit: CostLimit | None = None, settling: bool = False, models: ModelChoice | None = None
    ) -> None:
        self.usage = Usage()
        self.limit = limit
        self.settling = settling
        self.models = models or ModelChoice()  # what the run's calls name (`run_models`)
        self.answered: dict[str, str] = {}  # kind of call → the model that answered the latest one (`metered`)
        self.reserved_usd = 0.0
        self.committed_usd = 0.0  # open shares: dollars handed to running characters
        self._out_of_dollars = False

    @classmethod
    def for_run(cls, limit: CostLimit | None, models: ModelChoice | None = None) -> Ledger:
        """A workflow's ledger (settling when it has a dollar budget and started since `BUDGET_PATCH`), naming
        the run's `models` on its calls (`run_models`)."""
        return cls(limit, settling=limit is not None and workflow.patched(BUDGET_PATCH.id), models=run_models(models))

    def naming(self, request: R) -> R:
        """`request` naming the run's model for its kind of call (as it is when the run chose none)."""
        model = self.models.of(request.MODEL_KIND)
        return request if model is None else request.model_copy(update={"model": model})

    def free_usd(self) -> float | None:
        """Budget neither booked nor reserved nor in open shares; None without a dollar budget."""
        if self.limit is None:
            return None
        return max(0.0, self.limit.max_usd - self.usage.estimated_cost_usd - self.reserved_usd - self.committed_usd)

    def least(self, kind: CallKind) -> float:
        """The least a call of `kind` may be given: its floor when settling, else its quote (0 without a budget)."""
        if self.limit is None:
            return 0.0
        return self.limit.floor(kind) if self.settling else self.limit.quote(kind)

    def fits(self, *kinds: CallKind, extra_usd: float = 0.0) -> bool:
        """Whether calls of these kinds, one after another, could each be given at least their least now
        (`extra_usd`: what one of them needs beyond its quote, e.g. a refinement's human feedback)."""
        free = self.free_usd()
        return free is None or sum(self.least(kind) for kind in kinds) + extra_usd <= free + 1e-9

    @property
    def out_of_dollars(self) -> bool:
        """Whether the dollars have refused a call (or a character's start): the run is incomplete."""
        return self._out_of_dollars

    def afford(self, *kinds: CallKind, extra_usd: float = 0.0) -> bool:
        """Whether calls of these kinds fit now (`fits`); when they do not, the ledger is out of dollars."""
        if self.fits(*kinds, extra_usd=extra_usd):
            return True
        self._out_of_dollars = True
        return False

    def afford_share(self, usd: float) -> bool:
        """Whether a character's share of `usd` pays for at least its first (text) call; when it does not, the
        ledger is out of dollars."""
        if usd >= self.least("text"):
            return True
        self._out_of_dollars = True
        return False

    def overrun(self, message: str) -> BudgetExhausted:
        """The provider found a call's worst case above its cap (nothing was sent): out of dollars; the error
        to raise."""
        self._out_of_dollars = True
        return BudgetExhausted(message)

    def in_flight(self) -> bool:
        """Whether reserved caps or open shares are out that may still come back unspent."""
        return self.reserved_usd > 1e-9 or self.committed_usd > 1e-9

    def reserve(self, kind: CallKind, extra_usd: float = 0.0) -> float | None:
        """Set aside one call's cap and return it: its quote, or all that is free when that is less (never
        below its least); None without a dollar budget. Callers check `fits` first."""
        free = self.free_usd()
        if free is None or self.limit is None:
            return None
        if not self.fits(kind, extra_usd=extra_usd):
            raise BudgetExhausted(
                f"budget ${self.limit.max_usd:.4f} spent: ${self.usage.estimated_cost_usd:.4f} used, the next "
                f"{kind} call needs at least ${self.least(kind):.4f}"
            )
        quote = self.limit.quote(kind) + extra_usd
        cap = min(quote, free) if self.settling else quote
        self.reserved_usd += cap
        return cap

    def release(self, cap: float | None) -> None:
        if cap:
            self.reserved_usd = max(0.0, self.reserved_usd - cap)

    def book(self, usage: Usage) -> None:
        """Book usage spent on this run's behalf: a call's, or a finished child's."""
        self.usage = self.usage.plus(usage)

    def paid(self, result: Metered[V]) -> V:
        """Book a finished call's usage and hand back its value."""
        self.book(result.usage)
        return result.value

    def statement(self) -> Spend | None:
        """Booked vs budget, for status and results."""
        if self.limit is None:
            return None
        return Spend(
            max_usd=self.limit.max_usd,
            spent_usd=self.usage.estimated_cost_usd,
            reserved_usd=round(self.reserved_usd, 6),
            exhausted=self.out_of_dollars,
        )


@dataclass
class CallAllowance:
    """A character's calls of each kind, counted against the allowance of its share."""

    allowance: CallUsage
    by_kind: bool = True  # runs since BY_KIND_PATCH: each kind runs out on its own
    used: CallUsage = field(default_factory=CallUsage)
    exhausted: bool = False  # a call was refused: by this allowance or by the dollars (`refused`)

    @classmethod
    def for_run(cls, allowance: CallUsage) -> CallAllowance:
        return cls(allowance, by_kind=workflow.patched(BY_KIND_PATCH.id))

    def count(self, kind: CallKind) -> bool:
        """Count one call; False (and exhausted) when its kind is spent. A character whose image calls are
        spent still writes its text posts. Runs from before `BY_KIND_PATCH` refused every call once either
        kind, or the dollars, had run out."""
        used = self.used.plus(CallUsage.one(kind))
        over = not self.allowance.covers(used)
        self.exhausted |= over
        refused = over if self.by_kind else self.exhausted
        if not refused:
            self.used = used
        return not refused

    def refused(self, kind: CallKind) -> None:
        """The dollars refused a counted call: it was not made, so it is counted back."""
        self.exhausted = True
        self.used = self.used.plus(CallUsage.one(kind, -1))


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
    Every attempt that reached the provider is booked once, whether the call succeeds (its result carries
    all attempts' usage: `ledger.paid`) or fails."""
    try:
        return await call
    except ActivityError as err:
        if (used := failed_usage(err)) is not None and used.models and workflow.patched(BOOK_FAILED_ATTEMPTS_PATCH.id):
            ledger.book(used)
        raise


async def metered_call(
    ledger: Ledger,
    activity: Callable[..., Awaitable[Metered[V]]],
    arg: PaidRequest,
    call: PaidCall,
    extra_usd: float = 0.0,
) -> V:
    """`metered`, for its value."""
    return (await metered(ledger, activity, arg, call, extra_usd)).value


async def metered(
    ledger: Ledger,
    activity: Callable[..., Awaitable[Metered[V]]],
    arg: PaidRequest,
    call: PaidCall,
    extra_usd: float = 0.0,
) -> Metered[V]:
    """Run a paid activity that returns `Metered[V]`, naming the run's model (`Ledger.naming`): its cap (its
    quote, plus `extra_usd` for input beyond what the quote assumes) is reserved first and travels with the
    request (its attempts together stay within it); its usage is booked, failed or not; its value returns with
    the model that answered.

    The one way the dollars run out: raises `BudgetExhausted` (the ledger is then out of dollars) when the
    budget cannot cover the call once what is in flight has settled, or when the provider finds the call's
    real worst case above its cap (nothing was sent)."""
    kind = call.kind
    # what is in flight may come back unspent: wait for it (others waiting may take it first: check again)
    while ledger.settling and not ledger.fits(kind, extra_usd=extra_usd) and ledger.in_flight():
        await workflow.wait_condition(lambda: ledger.fits(kind, extra_usd=extra_usd) or not ledger.in_flight())
    if not ledger.afford(kind, extra_usd=extra_usd):
        free = ledger.free_usd() or 0.0
        needs = ledger.least(kind) + extra_usd
        raise BudgetExhausted(f"budget exhausted: ${free:.4f} left, an {kind} call needs ${needs:.4f}")
    cap = ledger.reserve(kind, extra_usd)
    try:
        request = ledger.naming(arg if cap is None else arg.model_copy(update={"max_cost_usd": cap}))
        result = await booked(ledger, workflow.execute_activity_method(activity, request, **call.options))
        ledger.book(result.usage)
        if result.model:
            ledger.answered[request.MODEL_KIND] = result.model
        return result
    except ActivityError as err:
        if isinstance(err.cause, ApplicationError) and err.cause.type == "BudgetExhausted":
            raise ledger.overrun(err.cause.message) from err
        raise
    finally:
        ledger.release(cap)

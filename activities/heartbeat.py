"""Keep activities visibly alive: one heartbeat stream per activity, from its first line to its last.

The workers' `HeartbeatThroughout` interceptor runs the stream; code inside an activity only says what it
is doing (`heartbeating("storing")`), records a malformed model reply (`beat`) or what a provider call
used (`spent`), which changes what the next heartbeat carries. One stream, one set of details: nothing
overwrites what another part wrote.

What the activity's provider calls used, this attempt and earlier ones, travels the same way, so every
attempt that reached the provider is paid for once: a retry is given what is left of the call's cap
(`cap_left`), a success returns all attempts' usage, and a failure carries it in its details.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from temporalio import activity
from temporalio.exceptions import ApplicationError, FailureError, is_cancelled_exception
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from models.usage import Metered, Usage, usage_detail, usage_in

HEARTBEAT_EVERY_S = 1.0


@dataclass
class Pulse:
    """What the running activity's heartbeats carry."""

    phase: str
    invalid_outputs: int  # malformed model replies so far, this attempt and earlier ones
    earlier: Usage = field(default_factory=Usage)  # what earlier attempts' provider calls used
    usage: Usage = field(default_factory=Usage)  # what its provider calls used, this attempt and earlier ones

    def details(self) -> dict[str, object]:
        details: dict[str, object] = {"phase": self.phase, "invalid_outputs": self.invalid_outputs}
        return details | usage_detail(self.usage) if self.usage.models else details


_pulse: ContextVar[Pulse | None] = ContextVar("atelier_pulse", default=None)


def earlier_invalid_outputs() -> int:
    """How many malformed model replies earlier attempts got (from the last attempt's heartbeat details)."""
    details = activity.info().heartbeat_details
    last = details[-1] if details else None
    return int(last.get("invalid_outputs", 0)) if isinstance(last, dict) else 0


def earlier_usage() -> Usage:
    """What earlier attempts' provider calls used (from the last attempt's heartbeat details)."""
    return usage_in(activity.info().heartbeat_details) or Usage()


def spent(used: Usage) -> None:
    """Record what one provider call used and heartbeat now, so the next attempt (and the failure, if this
    attempt fails) carries it. Outside the workers' heartbeat stream nothing is kept."""
    pulse = _pulse.get() if activity.in_activity() else None
    if pulse is None or not used.models:
        return
    pulse.usage = pulse.usage.plus(used)
    activity.heartbeat(pulse.details())


def cap_left(max_cost_usd: float | None) -> float | None:
    """What is left of a call's cap once this activity's earlier provider calls are paid for (its earlier
    attempts'): all attempts together stay within the one reservation the run made for the call."""
    pulse = _pulse.get() if activity.in_activity() else None
    if max_cost_usd is None or pulse is None or not pulse.usage.models:
        return max_cost_usd
    return max(0.0, round(max_cost_usd - pulse.usage.estimated_cost_usd, 9))


def invalid_outputs() -> int:
    """How many malformed model replies this activity has had so far, all attempts together."""
    if not activity.in_activity():
        return 0
    pulse = _pulse.get()
    return pulse.invalid_outputs if pulse else earlier_invalid_outputs()


def beat(phase: str, invalid: int | None = None) -> None:
    """Heartbeat now, carrying the malformed-reply count forward to the next attempt."""
    pulse = _pulse.get()
    if pulse is None:
        pulse = Pulse(phase, earlier_invalid_outputs())
    pulse.phase = phase
    if invalid is not None:
        pulse.invalid_outputs = invalid
    activity.heartbeat(pulse.details())


@contextlib.asynccontextmanager
async def heartbeating(phase: str) -> AsyncIterator[None]:
    """Say what the activity is doing while the block runs (its heartbeats carry it)."""
    pulse = _pulse.get() if activity.in_activity() else None
    if pulse is None:
        yield
        return
    before, pulse.phase = pulse.phase, phase
    try:
        yield
    finally:
        pulse.phase = before


@contextlib.asynccontextmanager
async def pulse_throughout(every: float = HEARTBEAT_EVERY_S) -> AsyncIterator[Pulse]:
    """The running activity's one heartbeat stream, for as long as the block runs."""
    earlier = earlier_usage()
    pulse = Pulse(activity.info().activity_type, earlier_invalid_outputs(), earlier, earlier)
    token = _pulse.set(pulse)

    async def beat_forever() -> None:
        while True:
            activity.heartbeat(pulse.details())
            await asyncio.sleep(every)

    task = asyncio.create_task(beat_forever())
    try:
        yield pulse
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        _pulse.reset(token)


class HeartbeatThroughout(Interceptor):
    """Worker interceptor: every activity heartbeats from its first line to its last (slow storage
    included), so a heartbeat timeout only ever notices a worker that died.

    It also settles what the activity's provider calls used over all its attempts: a `Metered` result
    carries earlier attempts' usage too, and a failure after a paid call carries the usage so far in its
    details (`carrying_usage`), for the workflow to book."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Beating(next)


def carrying_usage(err: BaseException, usage: Usage) -> BaseException:
    """The error an attempt failed with, carrying `usage` (all attempts' so far) as its last detail: an
    `ApplicationError` of the same type, message, details, retry behaviour and cause. Cancellations and
    Temporal's own failures are returned as they are, and so is an error when nothing was used."""
    if not usage.models or not isinstance(err, Exception) or is_cancelled_exception(err):
        return err
    if isinstance(err, ApplicationError):
        carried = ApplicationError(
            err.message,
            *err.details,
            usage_detail(usage),
            type=err.type,
            non_retryable=err.non_retryable,
            next_retry_delay=err.next_retry_delay,
            category=err.category,
        )
    elif isinstance(err, FailureError):
        return err
    else:  # as Temporal reports any other exception: its class name, its text, retryable
        carried = ApplicationError(str(err), usage_detail(usage), type=type(err).__name__)
    carried.__cause__ = err.__cause__
    carried.__suppress_context__ = err.__suppress_context__
    if err.__cause__ is None and not err.__suppress_context__:
        carried.__cause__ = err.__context__
    return carried.with_traceback(err.__traceback__)


def reservation_spent(err: BaseException, usage: Usage) -> BaseException:
    """A call refused as over its cap after its earlier attempts spent part of it: what ran out is this
    call's reservation, not the run's budget (`ReservationSpent`, non-retryable: the step fails, the run
    goes on within its budget)."""
    if not (usage.models and isinstance(err, ApplicationError) and err.type == "BudgetExhausted"):
        return err
    spent_usd = usage.estimated_cost_usd
    message = f"{err.message} (its earlier attempts spent ${spent_usd:.4f} of the call's reservation)"
    return ApplicationError(message, *err.details, type="ReservationSpent", non_retryable=True)


class _Beating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> object:
        async with pulse_throughout() as pulse:
            try:
                result = await super().execute_activity(input)
            except BaseException as err:
                carried = carrying_usage(reservation_spent(err, pulse.usage), pulse.usage)
                if carried is err:
                    raise
                raise carried from carried.__cause__
            if isinstance(result, Metered) and pulse.earlier.models:  # one booking for all attempts
                return result.model_copy(update={"usage": pulse.earlier.plus(result.usage)})
            return result

"""Keep activities visibly alive: one heartbeat stream per activity, from its first line to its last.

The workers' `HeartbeatThroughout` interceptor runs the stream; code inside an activity only says what it
is doing (`heartbeating("storing")`) or records a malformed model reply (`beat`), which changes what the
next heartbeat carries. One stream, one set of details: nothing overwrites what another part wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

HEARTBEAT_EVERY_S = 2.0


@dataclass
class Pulse:
    """What the running activity's heartbeats carry."""

    phase: str
    invalid_outputs: int  # malformed model replies so far, this attempt and earlier ones

    def details(self) -> dict[str, object]:
        return {"phase": self.phase, "invalid_outputs": self.invalid_outputs}


_pulse: ContextVar[Pulse | None] = ContextVar("atelier_pulse", default=None)


def earlier_invalid_outputs() -> int:
    """How many malformed model replies earlier attempts got (from the last attempt's heartbeat details)."""
    details = activity.info().heartbeat_details
    last = details[-1] if details else None
    return int(last.get("invalid_outputs", 0)) if isinstance(last, dict) else 0


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
    pulse = Pulse(activity.info().activity_type, earlier_invalid_outputs())
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
    included), so a heartbeat timeout only ever notices a worker that died."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Beating(next)


class _Beating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> object:
        async with pulse_throughout():
            return await super().execute_activity(input)

"""Keep activities visibly alive: heartbeat in the background while they run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

HEARTBEAT_EVERY_S = 2.0


def invalid_outputs() -> int:
    """How many malformed model replies earlier attempts of this activity got (from heartbeat details)."""
    if not activity.in_activity():
        return 0
    details = activity.info().heartbeat_details
    last = details[-1] if details else None
    return int(last.get("invalid_outputs", 0)) if isinstance(last, dict) else 0


def beat(phase: str, invalid: int | None = None) -> None:
    """One heartbeat that carries the malformed-reply count forward to the next attempt."""
    activity.heartbeat({"phase": phase, "invalid_outputs": invalid_outputs() if invalid is None else invalid})


@contextlib.asynccontextmanager
async def heartbeating(detail: str, every: float = HEARTBEAT_EVERY_S) -> AsyncIterator[None]:
    if not activity.in_activity():
        yield
        return

    async def beat_forever() -> None:
        while True:
            beat(detail)
            await asyncio.sleep(every)

    task = asyncio.create_task(beat_forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class HeartbeatThroughout(Interceptor):
    """Worker interceptor: every activity heartbeats from its first line to its last (slow storage
    included), so a heartbeat timeout only ever notices a worker that died."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Beating(next)


class _Beating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> object:
        async with heartbeating(activity.info().activity_type):
            return await super().execute_activity(input)

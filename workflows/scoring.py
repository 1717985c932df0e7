"""The run's way to the optional scoring queue: ask whether any scoring worker polls it, then wait for a
busy one.

A deployment may run no scoring worker: then a scoring call fails at once with `NoWorker` (an
`ActivityError`, as any failed call) and the caller goes on without its score, saying so. A scoring worker
that is there but busy is waited for, up to the call's own deadline. The answer is asked at most once a
minute per run; calls made meanwhile share it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.queue_pollers import require_pollers
    from models.settings import SCORING_QUEUE
    from workflows.failures import stop_if_cancelled
    from workflows.options import storage_call
    from workflows.patches import POLLERS_PATCH

ASK_AGAIN = timedelta(minutes=1)
OLD_WAIT = timedelta(seconds=60)  # the schedule-to-start timeout runs from before the patch had
ASK_DEADLINE = timedelta(minutes=2)  # the storage worker asks the server; failing that long, scoring is skipped


class ScoringQueue:
    """One run's view of the scoring queue (create one per workflow run)."""

    def __init__(self) -> None:
        self._asked: datetime | None = None
        self._answer: asyncio.Task[ActivityError | None] | None = None

    async def execute(self, activity: str, arg: Any, *, result_type: type, **options: Any) -> Any:
        """Run a scoring activity (options from `scoring_call`) once a scoring worker is known to poll."""
        if not workflow.patched(POLLERS_PATCH.id):  # runs from before: "is anyone there?" as a timeout, as then
            options = options | {"schedule_to_start_timeout": min(options["schedule_to_close_timeout"], OLD_WAIT)}
        elif (absent := await self._absent()) is not None:
            raise ActivityError(
                absent.message,
                scheduled_event_id=absent.scheduled_event_id,
                started_event_id=absent.started_event_id,
                identity=absent.identity,
                activity_type=absent.activity_type,
                activity_id=absent.activity_id,
                retry_state=absent.retry_state,
            ) from absent.cause  # a fresh error for each caller, the same cause
        return await workflow.execute_activity(activity, arg, result_type=result_type, **options)

    async def _absent(self) -> ActivityError | None:
        """`NoWorker`'s failure when no scoring worker polls, else None; asked at most once a minute."""
        now = workflow.now()
        if self._answer is None or (self._answer.done() and now - (self._asked or now) >= ASK_AGAIN):
            self._asked = now
            self._answer = asyncio.create_task(self._ask())
        return await asyncio.shield(self._answer)

    async def _ask(self) -> ActivityError | None:
        try:
            await workflow.execute_activity(
                require_pollers, SCORING_QUEUE, **storage_call("is a scoring worker there?", 1, ASK_DEADLINE)
            )
        except ActivityError as err:
            stop_if_cancelled(err)
            return err
        return None

"""Following a run for the API: look → record a batch of events → look again, until the run ends and
its terminal event is recorded. Each look is one activity that waits (briefly) for something new, so a
quiet run costs little history; a long one continues as new, carrying what it has seen."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.run_events import RunObserver
    from models.events import EventFeed, ObserveRequest
    from models.settings import EVENTS_QUEUE
    from workflows.options import HEARTBEAT_TIMEOUT

LOOK_WAIT_S = 10.0


@workflow.defn
class RunEventsWorkflow:
    @workflow.init
    def __init__(self, feed: EventFeed) -> None:
        self._next_seq = feed.next_seq

    @workflow.query
    def next_seq(self) -> int:
        """The sequence number the next event will get (every one below it is recorded)."""
        return self._next_seq

    @workflow.run
    async def run(self, feed: EventFeed) -> int:
        seen = feed.seen
        while not seen.closed:
            request = ObserveRequest(
                run_id=feed.run_id,
                pipeline=feed.pipeline,
                tenant=feed.tenant,
                webhooks=feed.webhooks,
                seen=seen,
                first_seq=self._next_seq,
                wait_s=LOOK_WAIT_S,
            )
            batch = await workflow.execute_activity_method(
                RunObserver.observe_run,
                request,
                summary=f"look at {feed.run_id} · from event {self._next_seq}",
                task_queue=EVENTS_QUEUE,
                start_to_close_timeout=timedelta(seconds=LOOK_WAIT_S + 60),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)),
            )
            seen, self._next_seq = batch.seen, self._next_seq + len(batch.events)
            if not seen.closed and workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(feed.model_copy(update={"seen": seen, "next_seq": self._next_seq}))
        return self._next_seq - 1

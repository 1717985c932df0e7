"""Every event of one run to one of its webhooks: batches signalled in → the queue, in the run's order → the
due deliveries go out in chunks, a few chunks at a time (one activity sends a chunk's requests concurrently)
→ each delivered, disabled or failed delivery is recorded in the store; one that was not accepted waits its
schedule's next interval (or the receiver's `Retry-After`) and goes out again with the same `webhook-id`.

A 410 disables the endpoint: nothing queued, or signalled later, is sent. The run's last batch closes the
queue and the workflow ends once the queue is empty. A batch sent again (the observer's activity retried) is
dropped by its event numbers. Before its history grows long it continues as new, carrying its queue.
Throughput comes from the chunks: one activity and one workflow task per chunk, not a workflow per event."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from kit.storage import deliveries_key
    from models.deliveries import DeliveryBatch, DeliveryRecord, EndpointFeed, RecordedDeliveries, SendChunk
    from models.events import Delivery, SendRequest, Sent, shown_url
    from models.settings import EVENTS_QUEUE
    from workflows.options import HEARTBEAT_TIMEOUT

CHUNK = 50  # deliveries one activity sends at once
CHUNKS_IN_FLIGHT = 4  # per endpoint: at most CHUNK x this requests in the receiver's hands
RECORD_EVERY = 200  # finished deliveries per file in the store
HISTORY_LIMIT = 2_000  # continue as new past this many events (Temporal warns at 10,240)


@workflow.defn
class EndpointDeliveriesWorkflow:
    @workflow.init
    def __init__(self, feed: EndpointFeed) -> None:
        self._feed = feed.model_copy(update={"queue": []})
        self._queue = {d.delivery_id: d for d in feed.queue}  # pending, in the run's order
        self._through, self._closed, self._disabled = feed.through_seq, feed.closed, feed.disabled
        self._recorded = feed.recorded
        self._done: list[DeliveryRecord] = []  # finished, not yet recorded
        self._recording: list[DeliveryRecord] = []  # being recorded now
        self._sending: set[str] = set()
        self._chunks = 0
        self._changes = 0  # counts what a wait must look again after: a batch, a redelivery, a chunk back
        self._tasks: set[asyncio.Task] = set()

    @workflow.signal
    def deliver(self, batch: DeliveryBatch) -> None:
        """The run's next deliveries to this webhook; a batch at or below what was taken is dropped."""
        if self._closed or batch.through_seq <= self._through:
            return
        due = self._first_due()
        for delivery in batch.deliveries:
            if delivery.seq > self._through and delivery.delivery_id not in self._queue:
                self._queue[delivery.delivery_id] = delivery.model_copy(update={"due": due, "status": "pending"})
        self._through, self._closed = batch.through_seq, batch.last
        self._changes += 1

    @workflow.update
    def redeliver(self, delivery: DeliveryRecord) -> None:
        """Send a finished delivery again, on a fresh schedule, with its `webhook-id`."""
        fresh = delivery.model_copy(update={"status": "pending", "attempts": [], "due": self._first_due()})
        self._queue[delivery.delivery_id] = fresh
        self._disabled = False  # asked for: a removed endpoint is still refused by the sender (no secret)
        self._changes += 1

    @redeliver.validator
    def validate_redeliver(self, delivery: DeliveryRecord) -> None:
        if delivery.delivery_id in self._queue:
            raise ValueError("this delivery is still being tried on its schedule")

    @workflow.query
    def deliveries(self) -> RecordedDeliveries:
        """What is pending or finished but not yet recorded in the store, without payloads."""
        records = [*self._recording, *self._done, *self._queue.values()]
        return RecordedDeliveries(feed=self._feed, records=[r.model_copy(update={"payload": None}) for r in records])

    @workflow.query
    def delivery(self, delivery_id: str) -> DeliveryRecord | None:
        """One pending or not yet recorded delivery, with its payload (None: not here)."""
        return self._queue.get(delivery_id) or next(
            (r for r in (*self._recording, *self._done) if r.delivery_id == delivery_id), None
        )

    @workflow.run
    async def run(self, feed: EndpointFeed) -> int:
        while True:
            long = self._history_long()
            with contextlib.suppress(asyncio.TimeoutError):  # a retry came due
                wait = None if long else self._until_due()
                changed = functools.partial(self._changed, long, self._changes)
                await workflow.wait_condition(changed, timeout=wait, timeout_summary="next retry due")
            if self._disabled:
                self._drop_queued()
            if self._ended():
                await self._record()
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._queue:  # else a redelivery came meanwhile
                    return self._recorded
            elif long and not self._chunks and not self._recording:
                await self._record()
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._carried())
            elif not long:
                self._dispatch()
            if len(self._done) >= RECORD_EVERY and not self._recording:
                self._spawn(self._record())

    # ── sending ──────────────────────────────────────────────────────────────────────────────────────────

    def _dispatch(self) -> None:
        if self._disabled:
            return
        now = workflow.now()
        due = [d for d in self._queue.values() if d.delivery_id not in self._sending and (d.due or now) <= now]
        while due and self._chunks < CHUNKS_IN_FLIGHT:
            chunk, due = due[:CHUNK], due[CHUNK:]
            self._sending.update(d.delivery_id for d in chunk)
            self._chunks += 1
            self._spawn(self._send(chunk))

    async def _send(self, chunk: list[DeliveryRecord]) -> None:
        requests = [
            SendRequest(
                delivery_id=d.delivery_id,
                tenant=self._feed.tenant,
                url=self._feed.url,
                endpoint_id=self._feed.endpoint_id,
                payload=d.payload or {},
                attempt=len(d.attempts) + 1,
            )
            for d in chunk
        ]
        try:
            sent = await workflow.execute_activity(  # by name: the sender's HTTP client stays out of workflows
                "send_webhooks",
                SendChunk(requests=requests),
                result_type=list[Sent],
                **_options(f"{len(chunk)} events from #{chunk[0].seq} → {shown_url(self._feed.url)}"),
            )
        except ActivityError as err:  # the chunk itself could not run (its workers kept dying): each attempt failed
            if is_cancelled_exception(err):
                raise
            at = workflow.now()
            sent = [Sent(attempt=r.attempt, at=at, error=f"attempt did not run: {err.cause or err}") for r in requests]
        gone = False
        for delivery, outcome in zip(chunk, sent, strict=True):
            gone = self._answered(delivery, outcome) or gone
        if gone and self._feed.endpoint_id is not None:
            await workflow.execute_activity(
                "disable_endpoint", self._as_delivery(chunk[0]), **_options(f"disable {shown_url(self._feed.url)}")
            )
        self._sending.difference_update(d.delivery_id for d in chunk)
        self._chunks -= 1
        self._changes += 1

    def _answered(self, delivery: DeliveryRecord, sent: Sent) -> bool:
        """Book one attempt; True when the receiver answered 410 Gone."""
        delivery.attempts.append(sent)
        if sent.delivered:
            self._finish(delivery, "delivered")
        elif sent.gone or sent.status == 410:
            self._disabled = True
            self._finish(delivery, "disabled")
            return sent.status == 410
        elif len(delivery.attempts) >= len(self._feed.schedule_s):
            self._finish(delivery, "failed")
        else:
            wait = max(self._feed.schedule_s[len(delivery.attempts)], sent.retry_after_s or 0.0)
            delivery.due = workflow.now() + timedelta(seconds=wait)
        return False

    def _finish(self, delivery: DeliveryRecord, status: str) -> None:
        delivery.status, delivery.due = status, None  # type: ignore[assignment]
        self._done.append(self._queue.pop(delivery.delivery_id, delivery))

    def _drop_queued(self) -> None:
        for delivery in [d for d in self._queue.values() if d.delivery_id not in self._sending]:
            self._finish(delivery, "disabled")

    # ── recording, waiting, carrying ────────────────────────────────────────────────────────────────────

    async def _record(self) -> None:
        if not self._done:
            return
        self._recording, self._done = self._done, []
        key = deliveries_key(workflow.info().workflow_id, workflow.now(), self._recorded)
        await workflow.execute_activity(
            "record_deliveries",
            args=[key, RecordedDeliveries(feed=self._feed, records=self._recording)],
            summary=f"record {len(self._recording)} deliveries",
            task_queue=EVENTS_QUEUE,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),  # until the store answers
        )
        self._recorded += len(self._recording)
        self._recording = []

    def _spawn(self, work) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _first_due(self):
        first = self._feed.schedule_s[0]
        return workflow.now() + timedelta(seconds=first) if first else None

    def _until_due(self) -> timedelta | None:
        """How long until the next retry is due (None: no retry waits, or every chunk is out)."""
        if self._chunks >= CHUNKS_IN_FLIGHT:
            return None
        now = workflow.now()
        later = [d.due for d in self._queue.values() if d.delivery_id not in self._sending and d.due and d.due > now]
        return min(later) - now if later else None

    def _ready(self) -> bool:
        now = workflow.now()
        return self._chunks < CHUNKS_IN_FLIGHT and any(
            d.delivery_id not in self._sending and (d.due or now) <= now for d in self._queue.values()
        )

    def _ended(self) -> bool:
        return self._closed and not self._queue and not self._chunks and not self._recording

    def _changed(self, long: bool, changes: int) -> bool:
        """Something to do: a delivery ready while a chunk is free, a file's worth to record, the end (or, with a
        long history, nothing out any more: time to continue as new); or a change that moves the next retry."""
        return (
            self._ended()
            or (self._changes != changes and not long)
            or (self._disabled and any(d not in self._sending for d in self._queue))
            or (len(self._done) >= RECORD_EVERY and not self._recording)
            or (not self._chunks and not self._recording if long else self._ready())
        )

    def _history_long(self) -> bool:
        info = workflow.info()
        return info.get_current_history_length() > HISTORY_LIMIT or info.is_continue_as_new_suggested()

    def _carried(self) -> EndpointFeed:
        return self._feed.model_copy(
            update={
                "queue": list(self._queue.values()),
                "through_seq": self._through,
                "closed": self._closed,
                "disabled": self._disabled,
                "recorded": self._recorded,
            }
        )

    def _as_delivery(self, record: DeliveryRecord) -> Delivery:
        feed = self._feed
        return Delivery(
            delivery_id=record.delivery_id,
            run_id=feed.run_id,
            tenant=feed.tenant,
            url=feed.url,
            endpoint_id=feed.endpoint_id,
            payload=record.payload or {},
            schedule_s=feed.schedule_s,
        )


def _options(summary: str) -> dict:
    """A chunk's attempts are not retried by Temporal (the schedule is the retry); a worker that dies while
    sending is (the chunk goes out again with the same `webhook-id`s, but for those its heartbeats booked)."""
    return {
        "summary": summary,
        "task_queue": EVENTS_QUEUE,
        "start_to_close_timeout": timedelta(seconds=60),
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,  # a worker that dies mid-send is noticed in seconds
        "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5),
    }

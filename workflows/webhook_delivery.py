"""One event to one webhook endpoint: attempt → wait the schedule's next interval (or the receiver's
`Retry-After`) → attempt again, until a 2xx, a 410 (the endpoint is disabled) or the end of the schedule.
Durable: a restarted worker or server resumes the schedule where it was, with the same `webhook-id`."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from models.events import Delivery, DeliveryOutcome, SendRequest, Sent, shown_url
    from models.settings import EVENTS_QUEUE
    from workflows.options import HEARTBEAT_TIMEOUT


@workflow.defn
class WebhookDeliveryWorkflow:
    @workflow.init
    def __init__(self, delivery: Delivery) -> None:
        self._attempts: list[Sent] = []
        self._delivery = delivery

    @workflow.query
    def attempts(self) -> list[Sent]:
        """The attempts so far, each with its answer."""
        return list(self._attempts)

    @workflow.query
    def delivery(self) -> Delivery:
        """What is delivered, and where (to send it again)."""
        return self._delivery

    @workflow.run
    async def run(self, delivery: Delivery) -> DeliveryOutcome:
        wait = 0.0
        for number, interval in enumerate(delivery.schedule_s, start=1):
            wait = max(wait, interval)
            if wait:
                await workflow.sleep(timedelta(seconds=wait))
            sent = await self._attempt(delivery, number)
            self._attempts.append(sent)
            if sent.delivered:
                return DeliveryOutcome(outcome="delivered", attempts=self._attempts)
            if sent.gone:
                return DeliveryOutcome(outcome="disabled", attempts=self._attempts)
            if sent.status == 410:
                await workflow.execute_activity(
                    "disable_endpoint", delivery, **_send_options(f"disable {shown_url(delivery.url)}")
                )
                return DeliveryOutcome(outcome="disabled", attempts=self._attempts)
            wait = sent.retry_after_s or 0.0
        return DeliveryOutcome(outcome="failed", attempts=self._attempts)

    async def _attempt(self, delivery: Delivery, number: int) -> Sent:
        request = SendRequest(
            delivery_id=delivery.delivery_id,
            tenant=delivery.tenant,
            url=delivery.url,
            endpoint_id=delivery.endpoint_id,
            payload=delivery.payload,
            attempt=number,
        )
        try:
            return await workflow.execute_activity(  # by name: the sender's HTTP client stays out of workflows
                "send_webhook",
                request,
                result_type=Sent,
                **_send_options(f"{delivery.payload['type']} → attempt {number}"),
            )
        except ActivityError as err:  # the attempt itself could not run (its workers kept dying): it failed
            if is_cancelled_exception(err):
                raise
            return Sent(attempt=number, at=workflow.now(), error=f"attempt did not run: {err.cause or err}")


def _send_options(summary: str) -> dict:
    """One HTTP attempt is not retried by Temporal (the schedule is the retry); a worker that dies while
    sending is (the same `webhook-id` goes out again, which receivers deduplicate on)."""
    return {
        "summary": summary,
        "task_queue": EVENTS_QUEUE,
        "start_to_close_timeout": timedelta(seconds=40),
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,  # a worker that dies mid-send is noticed in seconds
        "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5),
    }

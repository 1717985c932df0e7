"""Is a worker there? Ask the Temporal server who polls a queue, instead of waiting for a call to time out
(a schedule-to-start timeout also fires when the worker is there but busy)."""

from __future__ import annotations

from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode


@activity.defn(name="require_pollers")
async def require_pollers(queue: str) -> None:
    """Raise a non-retryable `NoWorker` error when no worker has polled `queue` for activities lately (the
    server remembers pollers for a few minutes, so a busy worker, which polls only when a slot is free,
    still counts). A server that cannot say (the time-skipping test server) counts as yes."""
    client = activity.client()
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    )
    try:
        described = await client.workflow_service.describe_task_queue(request)
    except RPCError as err:
        if err.status == RPCStatusCode.UNIMPLEMENTED:
            return
        raise
    if not described.pollers:
        advice = f"start one: python -m workers --queue {queue}"
        raise ApplicationError(f"no worker polls {queue} ({advice})", type="NoWorker", non_retryable=True)

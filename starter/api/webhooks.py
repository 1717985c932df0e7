"""Webhooks (`/v1/webhooks`: `routes/webhooks.py`): the tenant's signing secret for a create's own `webhook`,
endpoints it registers (each with its own secret; every later run's events go to them), and each run's
deliveries with their attempts, which can be sent again."""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import BaseModel, HttpUrl
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from kit.references import BadReference, check_url
from kit.run_reading import bounded_query
from models.api import EventType
from models.events import Delivery, Sent, deliveries_of
from models.settings import WORKFLOW_QUEUE, Settings
from models.workflow_interfaces import WebhookDeliveryWorkflow
from starter.api.errors import Conflict, Invalid, NotFound
from starter.api.runs import owned
from starter.api.service import Caller, Service


class Secret(BaseModel):
    secret: str  # `whsec_…`: verify deliveries with the standardwebhooks package


class NewEndpoint(BaseModel):
    url: HttpUrl
    events: list[EventType] | None = None  # None: every event


class EndpointView(BaseModel):
    id: str
    url: str
    events: list[str] | None
    created_at: datetime
    secret: str | None = None  # only in the answer to its creation


class DeliveryView(BaseModel):
    id: str  # also the `webhook-id` header of every attempt
    type: str | None
    url: str | None
    status: str  # pending (retrying on the schedule), delivered, failed, disabled
    attempts: list[Sent]


async def guard_webhook(settings: Settings, url: str, field: str) -> Invalid | None:
    """What is wrong with a webhook URL, or None: it passes the same guard as reference URLs
    (ATELIER_WEBHOOK_ALLOW_PRIVATE lifts it); the name is resolved off the event loop."""
    try:
        await asyncio.to_thread(check_url, url, settings.webhook_allow_private)
    except BadReference as exc:
        return Invalid(field, str(exc).replace("reference", "webhook", 1))
    return None


def secret(svc: Service, caller: Caller) -> Secret:
    return Secret(secret=svc.keys.webhook_secret(caller.tenant))


async def register(svc: Service, caller: Caller, body: NewEndpoint) -> EndpointView:
    """A new endpoint, with its own secret (shown this once)."""
    if (problem := await guard_webhook(svc.settings, str(body.url), "body.url")) is not None:
        raise problem
    endpoint = svc.keys.add_endpoint(caller.tenant, str(body.url), body.events)
    return EndpointView(**endpoint.model_dump(include={"id", "url", "events", "created_at", "secret"}))


def endpoints(svc: Service, caller: Caller) -> list[EndpointView]:
    return [
        EndpointView(**e.model_dump(include={"id", "url", "events", "created_at"}))
        for e in svc.keys.endpoints(caller.tenant)
    ]


def remove(svc: Service, caller: Caller, endpoint_id: str) -> None:
    if endpoint_id not in {e.id for e in svc.keys.endpoints(caller.tenant)}:
        raise NotFound("webhook endpoint", endpoint_id)
    svc.keys.disable_endpoint(endpoint_id)


async def deliveries(svc: Service, caller: Caller, run_id: str) -> list[DeliveryView]:
    """The run's deliveries, each with its attempts so far."""
    await owned(svc, caller, run_id)
    found: dict[str, DeliveryView] = {}
    async for execution in svc.client.list_workflows(f'WorkflowId STARTS_WITH "{deliveries_of(run_id)}"'):
        if execution.id in found:
            continue  # an earlier run of a redelivered one
        handle = svc.client.get_workflow_handle_for(WebhookDeliveryWorkflow.run, execution.id, run_id=execution.run_id)
        delivery = await bounded_query(handle, WebhookDeliveryWorkflow.delivery, Delivery | None)
        attempts = await bounded_query(handle, WebhookDeliveryWorkflow.attempts, list[Sent]) or []
        status = "pending"
        if execution.status == WorkflowExecutionStatus.COMPLETED:
            status = (await handle.result()).outcome
        elif execution.status != WorkflowExecutionStatus.RUNNING:
            status = "failed"
        found[execution.id] = DeliveryView(
            id=execution.id,
            type=delivery.payload.get("type") if delivery else None,
            url=delivery.url if delivery else None,
            status=status,
            attempts=attempts,
        )
    return sorted(found.values(), key=lambda d: d.id)


async def redeliver(svc: Service, caller: Caller, run_id: str, delivery_id: str) -> None:
    """Send a delivery again, on a fresh schedule with the same `webhook-id`; 409 while it is still tried."""
    await owned(svc, caller, run_id)
    if not delivery_id.startswith(deliveries_of(run_id)):
        raise NotFound("delivery", delivery_id)
    handle = svc.client.get_workflow_handle(delivery_id)
    delivery = await bounded_query(handle, WebhookDeliveryWorkflow.delivery, Delivery | None)
    if delivery is None:
        raise NotFound("delivery", delivery_id)
    try:
        await svc.client.start_workflow(
            WebhookDeliveryWorkflow.run,
            delivery,
            id=delivery_id,
            task_queue=WORKFLOW_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError as exc:
        raise Conflict("still delivering", "this delivery is still being tried on its schedule") from exc

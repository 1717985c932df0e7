"""Webhooks (`/v1/webhooks`: `routes/webhooks.py`): the tenant's signing secret for a create's own `webhook`,
endpoints it registers (each with its own secret; every later run's events go to them), and each run's
deliveries with their attempts, which can be sent again."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import BaseModel, HttpUrl
from temporalio.client import WithStartWorkflowOperation, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from kit.references import BadReference, check_url
from kit.run_reading import QUERY_TIMEOUT, bounded_query, describe_or_none
from kit.storage import deliveries_key
from models.api import EventType
from models.deliveries import DeliveryRecord, EndpointFeed, RecordedDeliveries, endpoint_of
from models.events import Delivery, Sent, deliveries_of
from models.settings import WORKFLOW_QUEUE, Settings
from models.workflow_interfaces import EndpointDeliveriesWorkflow, WebhookDeliveryWorkflow
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


async def secret(svc: Service, caller: Caller) -> Secret:
    return Secret(secret=await asyncio.to_thread(svc.keys.webhook_secret, caller.tenant))


async def register(svc: Service, caller: Caller, body: NewEndpoint) -> EndpointView:
    """A new endpoint, with its own secret (shown this once)."""
    if (problem := await guard_webhook(svc.settings, str(body.url), "body.url")) is not None:
        raise problem
    endpoint = await asyncio.to_thread(svc.keys.add_endpoint, caller.tenant, str(body.url), body.events)
    return EndpointView(**endpoint.model_dump(include={"id", "url", "events", "created_at", "secret"}))


async def endpoints(svc: Service, caller: Caller) -> list[EndpointView]:
    """The tenant's endpoints (the database is read off the event loop, as every route here does)."""
    return [
        EndpointView(**e.model_dump(include={"id", "url", "events", "created_at"}))
        for e in await asyncio.to_thread(svc.keys.endpoints, caller.tenant)
    ]


async def remove(svc: Service, caller: Caller, endpoint_id: str) -> None:
    if endpoint_id not in {e.id for e in await asyncio.to_thread(svc.keys.endpoints, caller.tenant)}:
        raise NotFound("webhook endpoint", endpoint_id)
    await asyncio.to_thread(svc.keys.disable_endpoint, endpoint_id)


async def deliveries(svc: Service, caller: Caller, run_id: str) -> list[DeliveryView]:
    """The run's deliveries, each with its attempts so far: a workflow per webhook (its finished deliveries in
    the store, the rest in its state), or, for runs from before, a workflow per event."""
    await owned(svc, caller, run_id)
    found: dict[str, DeliveryView] = {}
    endpoints: dict[str, bool] = {}  # a webhook's deliveries workflow → whether a run of it is running
    async for execution in svc.client.list_workflows(f'WorkflowId STARTS_WITH "{deliveries_of(run_id)}"'):
        if execution.workflow_type == EndpointDeliveriesWorkflow.__name__:
            running = execution.status == WorkflowExecutionStatus.RUNNING
            endpoints[execution.id] = endpoints.get(execution.id, False) or running
        elif execution.id not in found:  # else an earlier run of a redelivered one
            found[execution.id] = await _one_workflow_per_event(svc, execution.id, execution.run_id, execution.status)
    for workflow_id, running in endpoints.items():
        feed, records = await _endpoint_records(svc, workflow_id, running)
        for record in records.values():
            found[record.delivery_id] = DeliveryView(
                id=record.delivery_id,
                type=record.type,
                url=feed and feed.url,
                status=record.status,
                attempts=record.attempts,
            )
    return sorted(found.values(), key=lambda d: d.id)


async def _one_workflow_per_event(svc: Service, workflow_id: str, run: str | None, status: Any) -> DeliveryView:
    handle = svc.client.get_workflow_handle_for(WebhookDeliveryWorkflow.run, workflow_id, run_id=run)
    delivery = await bounded_query(handle, WebhookDeliveryWorkflow.delivery, Delivery | None)
    attempts = await bounded_query(handle, WebhookDeliveryWorkflow.attempts, list[Sent]) or []
    shown = "pending"
    if status == WorkflowExecutionStatus.COMPLETED:
        shown = (await handle.result()).outcome
    elif status != WorkflowExecutionStatus.RUNNING:
        shown = "failed"
    return DeliveryView(
        id=workflow_id,
        type=delivery.payload.get("type") if delivery else None,
        url=delivery.url if delivery else None,
        status=shown,
        attempts=attempts,
    )


async def _endpoint_records(
    svc: Service, workflow_id: str, running: bool
) -> tuple[EndpointFeed | None, dict[str, DeliveryRecord]]:
    """A webhook's deliveries: those recorded in the store, in the order written (a later record of one, after a
    redelivery, stands), then what its running workflow holds (pending ones, those not yet recorded)."""
    feed, records = None, {}
    for key in await svc.store.keys(deliveries_key(workflow_id)):
        recorded = RecordedDeliveries.model_validate_json(await svc.store.read(key))
        feed = recorded.feed
        records |= {r.delivery_id: r for r in recorded.records}
    if running:
        handle = svc.client.get_workflow_handle_for(EndpointDeliveriesWorkflow.run, workflow_id)
        live = await bounded_query(handle, EndpointDeliveriesWorkflow.deliveries, RecordedDeliveries | None)
        if live is not None:
            feed = live.feed
            records |= {r.delivery_id: r for r in live.records}
    return feed, records


async def redeliver(svc: Service, caller: Caller, run_id: str, delivery_id: str) -> None:
    """Send a delivery again, on a fresh schedule with the same `webhook-id`; 409 while it is still tried."""
    await owned(svc, caller, run_id)
    if not delivery_id.startswith(deliveries_of(run_id)):
        raise NotFound("delivery", delivery_id)
    if await describe_or_none(svc.client, delivery_id) is not None:  # a workflow per event (a run from before)
        return await _start_again(svc, delivery_id)
    workflow_id = endpoint_of(delivery_id)
    described = await describe_or_none(svc.client, workflow_id)
    running = described is not None and described.status == WorkflowExecutionStatus.RUNNING
    feed, records = await _endpoint_records(svc, workflow_id, running)
    record = records.get(delivery_id)
    if feed is None or record is None:
        raise NotFound("delivery", delivery_id)
    if record.status == "pending":
        raise Conflict("still delivering", "this delivery is still being tried on its schedule")
    if record.payload is None:  # finished, not yet recorded: the workflow holds its payload
        handle = svc.client.get_workflow_handle_for(EndpointDeliveriesWorkflow.run, workflow_id)
        try:
            record = await handle.query(EndpointDeliveriesWorkflow.delivery, delivery_id, rpc_timeout=QUERY_TIMEOUT)
        except RPCError:
            record = None
        if record is None:
            raise NotFound("delivery", delivery_id)
    start = WithStartWorkflowOperation(
        EndpointDeliveriesWorkflow.run,
        feed.model_copy(update={"queue": [], "closed": True}),  # a run started for this takes no more batches
        id=workflow_id,
        task_queue=WORKFLOW_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    try:
        await svc.client.execute_update_with_start_workflow(
            EndpointDeliveriesWorkflow.redeliver, record, start_workflow_operation=start
        )
    except WorkflowUpdateFailedError as exc:
        raise Conflict("still delivering", "this delivery is still being tried on its schedule") from exc


async def _start_again(svc: Service, delivery_id: str) -> None:
    """A delivery of a workflow of its own, started again under its id."""
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

"""Webhooks (`/v1/webhooks`): the tenant's signing secret for a create's own `webhook`, endpoints it
registers (each with its own secret; every later run's events go to them), and each run's deliveries
with their attempts, which can be sent again."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, HttpUrl
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.references import BadReference, check_url
from models.api import EventType
from models.events import Delivery, Sent
from models.settings import WORKFLOW_QUEUE, Settings
from starter.api.problems import ApiProblem, FieldProblem, invalid
from starter.api.runs import owned
from starter.api.service import Svc, Who
from starter.common import bounded_query

router = APIRouter(tags=["webhooks"])


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


async def guard_webhook(settings: Settings, url: str, field: str) -> FieldProblem | None:
    """Webhook URLs pass the same guard as reference URLs (ATELIER_WEBHOOK_ALLOW_PRIVATE lifts it); the
    name is resolved off the event loop."""
    try:
        await asyncio.to_thread(check_url, url, settings.webhook_allow_private)
    except BadReference as exc:
        return FieldProblem(field=field, message=str(exc).replace("reference", "webhook", 1))
    return None


@router.get("/v1/webhooks/secret", response_model=Secret, summary="The tenant's webhook signing secret")
async def secret(svc: Svc, caller: Who) -> Secret:
    return Secret(secret=svc.keys.webhook_secret(caller.tenant))


@router.post("/v1/webhooks", status_code=201, response_model=EndpointView, summary="Register a webhook endpoint")
async def register(body: NewEndpoint, svc: Svc, caller: Who) -> Any:
    if problem := await guard_webhook(svc.settings, str(body.url), "body.url"):
        return invalid([problem])
    endpoint = svc.keys.add_endpoint(caller.tenant, str(body.url), body.events)
    return EndpointView(**endpoint.model_dump(include={"id", "url", "events", "created_at", "secret"}))


@router.get("/v1/webhooks", response_model=list[EndpointView], summary="The tenant's webhook endpoints")
async def endpoints(svc: Svc, caller: Who) -> Any:
    return [
        EndpointView(**e.model_dump(include={"id", "url", "events", "created_at"}))
        for e in svc.keys.endpoints(caller.tenant)
    ]


@router.delete("/v1/webhooks/{endpoint_id}", status_code=204, summary="Remove a webhook endpoint")
async def remove(endpoint_id: str, svc: Svc, caller: Who) -> None:
    if endpoint_id not in {e.id for e in svc.keys.endpoints(caller.tenant)}:
        raise ApiProblem(404, "not found", f"no webhook endpoint {endpoint_id!r}")
    svc.keys.disable_endpoint(endpoint_id)


OUTCOMES = {WorkflowExecutionStatus.RUNNING: "pending", WorkflowExecutionStatus.COMPLETED: None}


@router.get("/v1/runs/{run_id}/deliveries", response_model=list[DeliveryView], summary="A run's webhook deliveries")
async def deliveries(run_id: str, svc: Svc, caller: Who) -> Any:
    await owned(svc, caller, run_id)
    found: dict[str, DeliveryView] = {}
    async for execution in svc.client.list_workflows(f'WorkflowId STARTS_WITH "{run_id}~hook"'):
        if execution.id in found:
            continue  # an earlier run of a redelivered one
        handle = svc.client.get_workflow_handle(execution.id, run_id=execution.run_id)
        delivery = await bounded_query(handle, "delivery", Delivery | None)
        attempts = await bounded_query(handle, "attempts", list[Sent]) or []
        status = "pending"
        if execution.status == WorkflowExecutionStatus.COMPLETED:
            status = (await handle.result()).get("outcome", "failed")
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


@router.post("/v1/runs/{run_id}/deliveries/{delivery_id}/redeliver", status_code=202, summary="Send a delivery again")
async def redeliver(run_id: str, delivery_id: str, svc: Svc, caller: Who) -> dict[str, str]:
    await owned(svc, caller, run_id)
    if not delivery_id.startswith(f"{run_id}~hook"):
        raise ApiProblem(404, "not found", f"no delivery {delivery_id!r}")
    delivery = await bounded_query(svc.client.get_workflow_handle(delivery_id), "delivery", Delivery | None)
    if delivery is None:
        raise ApiProblem(404, "not found", f"no delivery {delivery_id!r}")
    try:
        await svc.client.start_workflow(
            "WebhookDeliveryWorkflow",
            delivery,
            id=delivery_id,
            task_queue=WORKFLOW_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError as exc:
        raise ApiProblem(409, "still delivering", "this delivery is still being tried on its schedule") from exc
    return {"status": "accepted", "id": delivery_id}

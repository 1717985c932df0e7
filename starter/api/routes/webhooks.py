"""`/v1/webhooks` and a run's deliveries (the work: `starter.api.webhooks`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from starter.api import webhooks
from starter.api.service import Svc, Who
from starter.api.webhooks import DeliveryView, EndpointView, NewEndpoint, Secret

router = APIRouter(tags=["webhooks"])


@router.get("/v1/webhooks/secret", response_model=Secret, summary="The tenant's webhook signing secret")
async def secret(svc: Svc, caller: Who) -> Secret:
    return await webhooks.secret(svc, caller)


@router.post("/v1/webhooks", status_code=201, response_model=EndpointView, summary="Register a webhook endpoint")
async def register(body: NewEndpoint, svc: Svc, caller: Who) -> Any:
    return await webhooks.register(svc, caller, body)


@router.get("/v1/webhooks", response_model=list[EndpointView], summary="The tenant's webhook endpoints")
async def endpoints(svc: Svc, caller: Who) -> Any:
    return await webhooks.endpoints(svc, caller)


@router.delete("/v1/webhooks/{endpoint_id}", status_code=204, summary="Remove a webhook endpoint")
async def remove(endpoint_id: str, svc: Svc, caller: Who) -> None:
    await webhooks.remove(svc, caller, endpoint_id)


@router.get("/v1/runs/{run_id}/deliveries", response_model=list[DeliveryView], summary="A run's webhook deliveries")
async def deliveries(run_id: str, svc: Svc, caller: Who) -> Any:
    return await webhooks.deliveries(svc, caller, run_id)


@router.post("/v1/runs/{run_id}/deliveries/{delivery_id}/redeliver", status_code=202, summary="Send a delivery again")
async def redeliver(run_id: str, delivery_id: str, svc: Svc, caller: Who) -> dict[str, str]:
    await webhooks.redeliver(svc, caller, run_id, delivery_id)
    return {"status": "accepted", "id": delivery_id}

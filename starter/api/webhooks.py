"""Webhook settings of a tenant (`/v1/webhooks`): the signing secret for a create's `webhook`."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from starter.api.service import Svc, Who

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class Secret(BaseModel):
    secret: str  # `whsec_…`: verify deliveries with the standardwebhooks package


@router.get("/secret", response_model=Secret, summary="The tenant's webhook signing secret")
async def secret(svc: Svc, caller: Who) -> Secret:
    return Secret(secret=svc.keys.webhook_secret(caller.tenant))

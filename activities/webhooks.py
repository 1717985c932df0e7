"""Sending one webhook attempt, signed per the Standard Webhooks specification (`standardwebhooks`):
`webhook-id` (the same on every attempt), `webhook-timestamp`, `webhook-signature`. An HTTP answer, or
none, is an outcome the delivery workflow schedules on; it never raises for the receiver's sake."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from standardwebhooks.webhooks import Webhook
from temporalio import activity

from kit.api_keys import KeyStore
from kit.references import BadReference, check_url, pinned
from models.events import Delivery, SendRequest, Sent
from models.settings import Settings

ATTEMPT_TIMEOUT_S = 15.0
MAX_RETRY_AFTER_S = 24 * 3600.0


def retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        try:
            return min(MAX_RETRY_AFTER_S, max(0.0, (parsedate_to_datetime(value) - now).total_seconds()))
        except (TypeError, ValueError):
            return None


class WebhookSender:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = KeyStore(settings)

    @activity.defn(name="send_webhook")
    async def send_webhook(self, request: SendRequest) -> Sent:
        now = datetime.now(UTC)
        secret = await asyncio.to_thread(self.keys.signing_secret, request.tenant, request.endpoint_id)  # the database
        if secret is None:
            return Sent(attempt=request.attempt, at=now, error="the endpoint is disabled", gone=True)
        try:
            address = await asyncio.to_thread(check_url, request.url, self.settings.webhook_allow_private)
        except BadReference as exc:
            return Sent(attempt=request.attempt, at=now, error=str(exc).replace("reference", "webhook", 1))
        body = json.dumps(request.payload, separators=(",", ":"))
        headers = {
            "content-type": "application/json",
            "user-agent": "Atelier-Webhooks/1",
            "webhook-id": request.delivery_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(request.delivery_id, now, body),
        }
        url, host, extensions = pinned(request.url, address)
        try:  # 15 s for the whole attempt, however slowly the receiver drips its answer
            async with (
                asyncio.timeout(ATTEMPT_TIMEOUT_S),
                httpx.AsyncClient(timeout=ATTEMPT_TIMEOUT_S, follow_redirects=False) as client,
            ):
                sent = client.stream("POST", url, content=body, headers=headers | host, extensions=extensions)
                async with sent as answer:  # the status and headers are the outcome: the body is never read
                    pass
        except TimeoutError:
            return Sent(attempt=request.attempt, at=now, error=f"no answer within {ATTEMPT_TIMEOUT_S:.0f} s")
        except httpx.HTTPError as exc:
            return Sent(attempt=request.attempt, at=now, error=type(exc).__name__)  # its text may carry the URL
        return Sent(
            attempt=request.attempt,
            at=now,
            status=answer.status_code,
            retry_after_s=retry_after(answer.headers.get("retry-after"), now)
            if answer.status_code in (429, 503)
            else None,
        )

    @activity.defn(name="disable_endpoint")
    async def disable_endpoint(self, delivery: Delivery) -> None:
        """The receiver answered 410 Gone: nothing more goes to it."""
        if delivery.endpoint_id is not None:
            await asyncio.to_thread(self.keys.disable_endpoint, delivery.endpoint_id)

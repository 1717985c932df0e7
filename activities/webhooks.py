"""Sending one webhook attempt, signed per the Standard Webhooks specification (`standardwebhooks`):
`webhook-id` (the same on every attempt), `webhook-timestamp`, `webhook-signature`. An HTTP answer, or
none, is an outcome the delivery workflow schedules on; it never raises for the receiver's sake. A chunk of
attempts to one endpoint goes out concurrently over one shared client (`EndpointDeliveriesWorkflow`)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from standardwebhooks.webhooks import Webhook
from temporalio import activity

from activities.heartbeat import HEARTBEAT_EVERY_S
from kit.api_keys import KeyStore
from kit.references import BadReference, check_url, pinned
from kit.storage import ArtifactStore
from models.deliveries import RecordedDeliveries, SendChunk
from models.events import Delivery, SendRequest, Sent
from models.settings import Settings

ATTEMPT_TIMEOUT_S = 15.0
MAX_RETRY_AFTER_S = 24 * 3600.0
SHARED_CONNECTIONS = 256  # the sender's open connections, all endpoints together


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
    """The sending activities, with one HTTP client for all of them (its connections kept alive per endpoint)
    and the store that finished deliveries are recorded in."""

    def __init__(self, settings: Settings, store: ArtifactStore | None = None) -> None:
        self.settings, self.store = settings, store
        self.keys = KeyStore(settings)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:  # made on the worker's event loop, on first use
            limits = httpx.Limits(max_connections=SHARED_CONNECTIONS, max_keepalive_connections=SHARED_CONNECTIONS)
            self._client = httpx.AsyncClient(timeout=ATTEMPT_TIMEOUT_S, follow_redirects=False, limits=limits)
        return self._client

    @activity.defn(name="send_webhook")
    async def send_webhook(self, request: SendRequest) -> Sent:
        """One attempt of one delivery (`WebhookDeliveryWorkflow`, a workflow per event)."""
        return (await self._send([request]))[0]

    @activity.defn(name="send_webhooks")
    async def send_webhooks(self, chunk: SendChunk) -> list[Sent]:
        """One attempt of each delivery in the chunk, all to one endpoint, sent concurrently. Each answer is
        heartbeated: a retry after the worker died sends only those that got none."""
        answered: dict[str, Sent] = dict(_heartbeated())
        waiting = [r for r in chunk.requests if r.delivery_id not in answered]

        async def beat_forever() -> None:
            while True:
                activity.heartbeat([[key, sent.model_dump(mode="json")] for key, sent in answered.items()])
                await asyncio.sleep(HEARTBEAT_EVERY_S)

        if waiting:
            beating = asyncio.create_task(beat_forever())
            try:
                answered.update(zip((r.delivery_id for r in waiting), await self._send(waiting, answered), strict=True))
            finally:
                beating.cancel()
        return [answered[r.delivery_id] for r in chunk.requests]

    async def _send(self, requests: list[SendRequest], answered: dict[str, Sent] | None = None) -> list[Sent]:
        """Attempts to one endpoint (the first request's tenant, URL and endpoint): its secret and address are
        looked up once."""
        first, now = requests[0], datetime.now(UTC)
        secret = await asyncio.to_thread(self.keys.signing_secret, first.tenant, first.endpoint_id)  # the database
        if secret is None:
            return [Sent(attempt=r.attempt, at=now, error="the endpoint is disabled", gone=True) for r in requests]
        try:
            address = await asyncio.to_thread(check_url, first.url, self.settings.webhook_allow_private)
        except BadReference as exc:
            error = str(exc).replace("reference", "webhook", 1)
            return [Sent(attempt=r.attempt, at=now, error=error) for r in requests]
        signer = Webhook(secret)

        async def attempt(request: SendRequest) -> Sent:
            sent = await self._attempt(request, signer, address)
            if answered is not None:  # each answer as it comes: the heartbeats carry them
                answered[request.delivery_id] = sent
            return sent

        return list(await asyncio.gather(*(attempt(r) for r in requests)))

    async def _attempt(self, request: SendRequest, signer: Webhook, address: str | None) -> Sent:
        now = datetime.now(UTC)
        body = json.dumps(request.payload, separators=(",", ":"))
        headers = {
            "content-type": "application/json",
            "user-agent": "Atelier-Webhooks/1",
            "webhook-id": request.delivery_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(request.delivery_id, now, body),
        }
        url, host, extensions = pinned(request.url, address)
        try:  # 15 s for the whole attempt, however slowly the receiver drips its answer
            async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
                sent = self.client.stream("POST", url, content=body, headers=headers | host, extensions=extensions)
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

    @activity.defn(name="record_deliveries")
    async def record_deliveries(self, key: str, recorded: RecordedDeliveries) -> None:
        """Finished deliveries into the store, where the API lists them (the same key when retried)."""
        assert self.store is not None, "the events worker records deliveries: it is given the store"
        await self.store.put(key, recorded.model_dump_json().encode(), "application/json")


def _heartbeated() -> list[tuple[str, Sent]]:
    """What an earlier attempt of this chunk heartbeated: the answers it had."""
    details = activity.info().heartbeat_details
    return [(key, Sent.model_validate(sent)) for key, sent in details[0]] if details else []

"""A run's webhook deliveries, one queue per webhook of the run (`EndpointDeliveriesWorkflow`): what the
observer signals in, what a chunk send carries, and what is recorded once a delivery is over.

Finished deliveries are recorded in the artifact store in files of a few hundred (`kit.storage.deliveries_key`), so the
workflow's state (and what it carries when it continues as new) holds only what is still being tried.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from models.events import SendRequest, Sent, deliveries_of

Status = Literal["pending", "delivered", "failed", "disabled"]


class DeliveryRecord(BaseModel):
    """One event's delivery to one webhook: queued (pending), then delivered, failed or disabled."""

    delivery_id: str  # also the `webhook-id` header: the same on every attempt and redelivery
    seq: int  # the event's number in its run
    type: str
    payload: dict[str, Any] | None = None  # left out of the live list (`deliveries` query)
    status: Status = "pending"
    attempts: list[Sent] = Field(default_factory=list)
    due: datetime | None = None  # its next attempt not before this (the schedule or `Retry-After`)


class EndpointFeed(BaseModel):
    """Input of EndpointDeliveriesWorkflow (and what it carries when it continues as new)."""

    run_id: str
    tenant: str
    url: str
    endpoint_id: str | None = None  # a registered endpoint (its own secret); None: the tenant's secret
    schedule_s: list[float]
    queue: list[DeliveryRecord] = Field(default_factory=list)  # pending, in the run's order
    through_seq: int = 0  # every batch up to this event was taken: a batch sent again is dropped
    closed: bool = False  # the run's last batch came (or a redelivery's run): no more batches are taken
    disabled: bool = False  # the endpoint answered 410 Gone, or was removed: nothing more is sent
    recorded: int = 0  # finished deliveries recorded in the store so far


class DeliveryBatch(BaseModel):
    """Signal: one observed batch's deliveries to this webhook (`through_seq`: the batch's last event)."""

    deliveries: list[DeliveryRecord]
    through_seq: int
    last: bool = False  # the batch holds the run's terminal event


class SendChunk(BaseModel):
    """One activity's worth of attempts to one endpoint, sent concurrently."""

    requests: list[SendRequest]


class RecordedDeliveries(BaseModel):
    """Finished deliveries as the store keeps them (and as the live `deliveries` query answers)."""

    feed: EndpointFeed  # its queue left empty
    records: list[DeliveryRecord]


def endpoint_deliveries_id(run_id: str, webhook: int) -> str:
    """The workflow delivering the run's events to its `webhook`-th webhook (each delivery's id is this, a dash
    and the event's number: `delivery_id`)."""
    return f"{deliveries_of(run_id)}{webhook}"


def endpoint_of(delivery: str) -> str:
    """The endpoint workflow a delivery id belongs to."""
    return delivery.rsplit("-", 1)[0]

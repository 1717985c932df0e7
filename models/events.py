"""A run's events, as the API streams them (SSE) and webhooks deliver them.

`RunEventsWorkflow` follows a run and records its events in batches in the artifact store
(`events/<run>/<first seq>.json`); each event has a per-run sequence number, its SSE `id`. A batch, once
written, is never changed: an attempt that finds its batch already written returns it as it stands.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, HttpUrl

from models.api import EventType


class RunEvent(BaseModel):
    seq: int = Field(ge=1)
    type: EventType
    run_id: str
    timestamp: datetime
    data: dict[str, Any] = Field(default_factory=dict)


class CharacterSeen(BaseModel):
    created: bool = False
    avatar: bool = False
    posts: list[int] = Field(default_factory=list)
    pictures: list[int] = Field(default_factory=list)


class Seen(BaseModel):
    """What the events sent so far covered: small (finished characters are only a name)."""

    started: bool = False
    progress: str | None = None  # the last progress sent, as compact JSON
    iterations: int = 0
    pictures: list[str] = Field(default_factory=list)  # the run's own pictures sent (iterations, world, meme)
    characters: dict[str, CharacterSeen] = Field(default_factory=dict)  # characters still being made
    done: list[str] = Field(default_factory=list)  # characters whose every post was sent
    cells: int = 0  # an experiment's cells sent, in the order they finished (`CellOutcome.order`)
    models: dict[str, str] | None = None  # the run's models per kind, once read from its job
    life_tick: int = -1  # a life's last tick whose events were all sent (-1: not even the world's own posts)
    life_sent: int = 0  # events of the tick after it already sent (a big tick goes out over several looks)
    life_posts: int = 0  # the life's posts as of `life_tick`
    closed: bool = False


class Webhook(BaseModel):
    """Where a run's events are delivered, and which (None: all)."""

    url: HttpUrl
    events: list[EventType] | None = None
    endpoint_id: str | None = None  # a registered endpoint (its own secret); None: the tenant's secret


class Delivery(BaseModel):
    """Input of WebhookDeliveryWorkflow: one event to one endpoint, tried on the schedule with one
    `webhook-id`."""

    delivery_id: str  # also the `webhook-id` header: the same on every attempt and redelivery
    run_id: str
    tenant: str
    url: str
    endpoint_id: str | None = None
    payload: dict[str, Any]  # `type`, `timestamp`, `data` (with the run's sequence number)
    schedule_s: list[float]


class SendRequest(BaseModel):
    delivery_id: str
    tenant: str
    url: str
    endpoint_id: str | None = None
    payload: dict[str, Any]
    attempt: int


class Sent(BaseModel):
    """One attempt's outcome: the receiver's status code, or why there was none."""

    attempt: int
    at: datetime
    status: int | None = None
    error: str | None = None
    retry_after_s: float | None = None
    gone: bool = False  # the endpoint was removed or disabled: nothing more is sent to it

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class DeliveryOutcome(BaseModel):
    outcome: Literal["delivered", "failed", "disabled"]
    attempts: list[Sent]


class EventFeed(BaseModel):
    """Input of RunEventsWorkflow (and what it carries over when it continues as new)."""

    run_id: str
    pipeline: str
    tenant: str
    webhooks: list[Webhook] = Field(default_factory=list)
    seen: Seen = Field(default_factory=Seen)
    next_seq: int = 1


class ObserveRequest(BaseModel):
    run_id: str
    pipeline: str
    tenant: str
    webhooks: list[Webhook] = Field(default_factory=list)
    seen: Seen
    first_seq: int
    wait_s: float = 10.0  # wait this long for something new before answering with nothing


class Batch(BaseModel):
    """What one observation found: the events (numbered from `first_seq`) and what has now been seen."""

    first_seq: int
    events: list[RunEvent] = Field(default_factory=list)
    seen: Seen


def deliveries_of(run_id: str) -> str:
    """What the id of every delivery of the run's events starts with."""
    return f"{run_id}~hook"


def delivery_id(run_id: str, webhook: int, seq: int) -> str:
    """One event's delivery to one of the run's webhooks: its workflow id and `webhook-id`, the same on every
    attempt and redelivery."""
    return f"{deliveries_of(run_id)}{webhook}-{seq:08d}"


def shown_url(url: str) -> str:
    """A webhook URL as summaries show it: no credentials, query or fragment."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"

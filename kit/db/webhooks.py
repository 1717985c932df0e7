"""The webhook endpoints tenants register (each with its own signing secret; every later run's events go to
them): the table and its repository."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from kit.db.base import Base, UTCDateTime, insert_new, now


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name"), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str] | None] = mapped_column(JSON)  # None: every event
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # it answered 410 Gone, or was removed


class Endpoints:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, endpoint: WebhookEndpoint) -> bool:
        """Store the endpoint unless one with its id is there; whether it was added."""
        values = {c.key: getattr(endpoint, c.key) for c in WebhookEndpoint.__table__.columns}
        return insert_new(self.session, WebhookEndpoint, **values)

    def active(self, tenant: str) -> list[WebhookEndpoint]:
        query = select(WebhookEndpoint).where(WebhookEndpoint.tenant == tenant, WebhookEndpoint.disabled_at.is_(None))
        return list(self.session.scalars(query.order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)))

    def of(self, tenant: str, endpoint_id: str) -> WebhookEndpoint | None:
        query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant == tenant)
        return self.session.scalar(query)

    def all(self) -> list[WebhookEndpoint]:
        return list(self.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)))

    def disable(self, endpoint_id: str) -> WebhookEndpoint | None:
        """Disable the endpoint unless it is already; the endpoint disabled now, or None."""
        disable = (
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.disabled_at.is_(None))
            .values(disabled_at=now())
            .returning(WebhookEndpoint)
        )
        return self.session.scalars(disable.execution_options(populate_existing=True)).first()

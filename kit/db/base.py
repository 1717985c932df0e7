"""What every table shares: the declarative base (its metadata is what migrations compare against), a
timestamp column that is UTC-aware on SQLite and PostgreSQL alike, and an insert that leaves a row that is
already there alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

# constraint names that are the same on every database, so a later migration can name what it alters
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, stored as UTC and read back aware (SQLite keeps no zone: it gets naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a naive datetime: give it a zone")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


def insert_new(session: Session, table: type[Base], **values: Any) -> bool:
    """Insert a row unless one with the same primary or unique key is there (another process's, a moment
    ago: no error either way); whether this one was inserted."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgres_insert
    key = next(iter(table.__table__.primary_key.columns))
    inserted = session.execute(insert(table).values(**values).on_conflict_do_nothing().returning(key))
    return inserted.first() is not None  # (psycopg reports no row count for it)

"""Experiments' datasets: a tenant's rows, saved once under their digest (`kit.datasets.dataset_id`) with the
name of the file they came from, their row count and their columns, and read back by id. The same rows saved
again (by any process) are the dataset first saved; another tenant's id finds nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Select, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kit.db.base import Base, UTCDateTime, insert_new

NAME = 200  # a dataset's name (its file's) is cut to this


class Dataset(Base):
    __tablename__ = "datasets"

    tenant: Mapped[str] = mapped_column(String(32), primary_key=True)  # the keyless API's `local` too
    id: Mapped[str] = mapped_column(String(24), primary_key=True)  # `ds-` and the rows' digest
    name: Mapped[str] = mapped_column(String(NAME))
    row_count: Mapped[int] = mapped_column()
    column_names: Mapped[list[str]] = mapped_column(JSON)  # every field a row names, sorted
    data: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # the rows (bounded: `kit.datasets.MAX_BYTES`)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Datasets:
    """A tenant's datasets in one session."""

    def __init__(self, session: Session, tenant: str) -> None:
        self.session = session
        self.tenant = tenant

    def keep(self, dataset: Dataset) -> Dataset:
        """Keep the dataset unless the tenant has one with its id already; the one kept."""
        values = {c.key: getattr(dataset, c.key) for c in Dataset.__table__.columns} | {"tenant": self.tenant}
        insert_new(self.session, Dataset, **values)
        return self.session.scalars(self._where(dataset.id)).one()  # inserted now, or by whoever did first

    def get(self, ident: str) -> Dataset | None:
        return self.session.scalars(self._where(ident)).first()

    def _where(self, ident: str) -> Select[tuple[Dataset]]:
        return select(Dataset).where(Dataset.tenant == self.tenant, Dataset.id == ident)

"""Upload marks: which tenant uploaded which reference image (`uploads/<sha256>.<ext>`, stored once however
many upload it). A keyed caller may use or read an upload only when it is marked as its own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kit.db.base import Base, UTCDateTime, insert_new, now
from kit.db.engine import Database


class Upload(Base):
    __tablename__ = "uploads"

    tenant: Mapped[str] = mapped_column(String(32), primary_key=True)  # the keyless API's `local` too
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Uploads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def mark(self, tenant: str, key: str) -> None:
        insert_new(self.session, Upload, tenant=tenant, key=key, created_at=now())

    def marked(self, tenant: str, key: str) -> bool:
        query = select(Upload.key).where(Upload.tenant == tenant, Upload.key == key)
        return self.session.scalar(query) is not None


class UploadMarks:
    """The marks in one database, each call its own short transaction (what the API holds)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def mark(self, tenant: str, key: str) -> None:
        with self.db.writing() as session:
            Uploads(session).mark(tenant, key)

    def marked(self, tenant: str, key: str) -> bool:
        with self.db.reading() as session:
            return Uploads(session).marked(tenant, key)

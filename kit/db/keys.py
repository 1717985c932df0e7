"""Tenants, their API keys (stored only as SHA-256), the site's own secrets (the studio's session secret) and
the keys files already imported: the tables, and a repository for each with small typed methods on a session.

Every change is one statement that holds by itself when several processes make it at once: an UPDATE that
names the row as it must still be (unrevoked), an INSERT that leaves a row already there alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, Update, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from kit.db.base import Base, UTCDateTime, insert_new, now


class Tenant(Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    webhook_secret: Mapped[str] = mapped_column(String(64))  # signs a create's own `webhook` (`whsec_…`)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StoredKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # a short public name: the digest's start
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # studio sessions name the generation they were made in; a sign-out moves it on (ends them all)
    session_generation: Mapped[int] = mapped_column(default=0)


class SiteSecret(Base):
    __tablename__ = "site_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FileImport(Base):
    """A keys file of an earlier release, imported (by its digest: the same file is never imported twice)."""

    __tablename__ = "file_imports"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Tenants:
    def __init__(self, session: Session) -> None:
        self.session = session

    def webhook_secret(self, name: str) -> str | None:
        return self.session.scalar(select(Tenant.webhook_secret).where(Tenant.name == name))

    def ensure(self, name: str, webhook_secret: Callable[[], str], since: datetime | None = None) -> str:
        """The tenant's webhook secret; the tenant is made (with a new secret) the first time."""
        insert_new(self.session, Tenant, name=name, webhook_secret=webhook_secret(), created_at=since or now())
        return self.webhook_secret(name) or ""

    def secrets(self) -> dict[str, str]:
        rows = self.session.execute(select(Tenant.name, Tenant.webhook_secret).order_by(Tenant.name))
        return {name: secret for name, secret in rows}


class Keys:
    def __init__(self, session: Session) -> None:
        self.session = session

    def any_active(self) -> bool:
        return self.session.scalar(select(StoredKey.id).where(StoredKey.revoked_at.is_(None)).limit(1)) is not None

    def active(self, sha256: str, generation: int | None = None) -> StoredKey | None:
        """The unrevoked key with this digest (and, when given, this session generation)."""
        query = select(StoredKey).where(StoredKey.sha256 == sha256, StoredKey.revoked_at.is_(None))
        if generation is not None:
            query = query.where(StoredKey.session_generation == generation)
        return self.session.scalar(query)

    def all(self) -> list[StoredKey]:
        return list(self.session.scalars(select(StoredKey).order_by(StoredKey.created_at, StoredKey.id)))

    def add(self, key: StoredKey) -> bool:
        """Store the key unless one with its digest (or id) is there; whether it was added."""
        values = {c.key: getattr(key, c.key) for c in StoredKey.__table__.columns}
        return insert_new(self.session, StoredKey, **values)

    def end_sessions(self, sha256: str) -> StoredKey | None:
        """Move the unrevoked key's session generation on (its studio sessions end); the key, or None."""
        return self._changed(
            update(StoredKey)
            .where(StoredKey.sha256 == sha256, StoredKey.revoked_at.is_(None))
            .values(session_generation=StoredKey.session_generation + 1)
        )

    def revoke(self, key_id: str) -> StoredKey | None:
        """Revoke the key unless it is already; the key revoked now, or None."""
        return self._changed(
            update(StoredKey).where(StoredKey.id == key_id, StoredKey.revoked_at.is_(None)).values(revoked_at=now())
        )

    def _changed(self, change: Update) -> StoredKey | None:
        """The key `change` changed, as it is now; None when it changed none."""
        return self.session.scalars(change.returning(StoredKey).execution_options(populate_existing=True)).first()


class SiteSecrets:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, name: str) -> str | None:
        return self.session.scalar(select(SiteSecret.value).where(SiteSecret.name == name))

    def ensure(self, name: str, make: Callable[[], str]) -> str:
        """The secret `name`, made by `make` the first time (another process's may be there already)."""
        insert_new(self.session, SiteSecret, name=name, value=make(), created_at=now())
        return self.get(name) or ""


class FileImports:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, sha256: str, path: str) -> bool:
        """Note the file as imported; False when it already was (by this process or another)."""
        return insert_new(self.session, FileImport, sha256=sha256, path=path, imported_at=now())

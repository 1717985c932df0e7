"""API keys: each maps to a tenant and is stored only as its SHA-256, in the database (kit/db).

`python -m starter api-key add TENANT` prints a new key once; `list` and `revoke` do the rest. Nothing is kept
in the process between calls: every API process reads the database on each request, so a key revoked, or a
key whose studio sessions were ended by a sign-out, through any of them (or the CLI) is refused by all at once.
The store also holds each tenant's webhook signing secret and registered endpoints, and the studio's session
secret. A keys file of an earlier release (`ATELIER_API_KEYS_FILE`, default `<data dir>/api-keys.json`) is
imported the first time a process opens the database: every key keeps working, the file is kept, and the same
file is never imported twice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from kit.db import Database, DatabaseError, database, ready
from kit.db.keys import FileImports, Keys, SiteSecrets, StoredKey, Tenants
from kit.db.webhooks import Endpoints, WebhookEndpoint
from models.settings import DATABASE_FILE, Settings

TENANT = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
LOCAL_TENANT = "local"  # the one tenant of an API without keys (bound to loopback only)
KEY_PREFIX = "atl_"
SESSION_SECRET = "session"  # the site secret that signs studio sessions and CSRF tokens


class BadTenant(ValueError):
    pass


class ApiKey(BaseModel):
    id: str  # a short public name for the key (its hash's first characters)
    tenant: str
    sha256: str
    created_at: datetime
    revoked_at: datetime | None = None
    # studio sessions of this key name the generation they were made in; a sign-out moves it on (ends them all)
    session_generation: int = 0


class Endpoint(BaseModel):
    """A webhook endpoint a tenant registered: every run's events (or those listed) go to it, signed with
    its own secret."""

    id: str
    tenant: str
    url: str
    events: list[str] | None = None
    secret: str
    created_at: datetime
    disabled_at: datetime | None = None  # it answered 410 Gone, or was removed


class KeyFile(BaseModel):
    """Everything the store holds, as the keys file of earlier releases held it (and what is imported)."""

    keys: list[ApiKey] = Field(default_factory=list)
    # each tenant's webhook signing secret (`whsec_…`), for a create's own `webhook`
    webhook_secrets: dict[str, str] = Field(default_factory=dict)
    endpoints: list[Endpoint] = Field(default_factory=list)
    session_secret: str = ""  # signs the studio's session cookies and CSRF tokens (made on first use)


def check_tenant(name: str) -> str:
    if not TENANT.match(name):
        raise BadTenant(f"tenant {name!r}: use 1-32 lower-case letters, digits or _, starting with a letter")
    if name == LOCAL_TENANT:
        raise BadTenant(f"tenant {name!r} is reserved: it owns the runs made before the API had keys")
    return name


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The keys in the settings' database (`Settings`), or, given a keys file's path as earlier releases
    were, in the SQLite database beside it (the data dir's). Each call is a short transaction of its own."""

    def __init__(self, where: Settings | Path) -> None:
        if isinstance(where, Path):
            self.path, self.address = where, f"sqlite:///{(where.parent / DATABASE_FILE).absolute()}"
        else:
            self.path, self.address = where.api_keys_path, where.database_address

    @property
    def database(self) -> Database:
        """The database, migrated, with the keys file imported (the first time this process asks)."""
        return imported(ready(database(self.address)), self.path)

    @property
    def shown(self) -> str:
        return self.database.shown

    def load(self) -> KeyFile:
        with self.database.reading() as session:
            return KeyFile(
                keys=[_key(k) for k in Keys(session).all()],
                webhook_secrets=Tenants(session).secrets(),
                endpoints=[_endpoint(e) for e in Endpoints(session).all()],
                session_secret=SiteSecrets(session).get(SESSION_SECRET) or "",
            )

    def configured(self) -> bool:
        with self.database.reading() as session:
            return Keys(session).any_active()

    def find(self, key: str) -> ApiKey | None:
        """The unrevoked key `key` is."""
        with self.database.reading() as session:
            return _key(Keys(session).active(digest(key)))

    def signed_in(self, key_sha256: str, generation: int) -> ApiKey | None:
        """The unrevoked key a studio session names (by digest), while its sessions of `generation` last."""
        with self.database.reading() as session:
            return _key(Keys(session).active(key_sha256, generation))

    def end_sessions(self, key_sha256: str) -> ApiKey | None:
        """Sign-out: every studio session of this key ends, in every API process on this database."""
        with self.database.writing() as session:
            return _key(Keys(session).end_sessions(key_sha256))

    def session_secret(self) -> str:
        with self.database.writing() as session:
            return SiteSecrets(session).ensure(SESSION_SECRET, lambda: secrets.token_urlsafe(32))

    def add(self, tenant: str) -> tuple[str, ApiKey]:
        """A new key for `tenant`: the key itself (shown once) and what is stored of it."""
        check_tenant(tenant)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        stored = StoredKey(
            id=digest(key)[:12], tenant=tenant, sha256=digest(key), created_at=datetime.now(UTC), session_generation=0
        )
        with self.database.writing() as session:
            Tenants(session).ensure(tenant, new_webhook_secret)
            Keys(session).add(stored)
            return key, _key(stored)  # type: ignore[return-value]

    def revoke(self, key_id: str) -> ApiKey | None:
        with self.database.writing() as session:
            return _key(Keys(session).revoke(key_id))

    def webhook_secret(self, tenant: str) -> str:
        """The tenant's signing secret, made (and stored) the first time it is asked for."""
        with self.database.reading() as session:
            if found := Tenants(session).webhook_secret(tenant):
                return found
        with self.database.writing() as session:
            return Tenants(session).ensure(tenant, new_webhook_secret)

    def add_endpoint(self, tenant: str, url: str, events: list[str] | None) -> Endpoint:
        endpoint = WebhookEndpoint(
            id="ep_" + secrets.token_hex(8),
            tenant=tenant,
            url=url,
            events=events,
            secret=new_webhook_secret(),
            created_at=datetime.now(UTC),
            disabled_at=None,
        )
        with self.database.writing() as session:
            Tenants(session).ensure(tenant, new_webhook_secret)
            Endpoints(session).add(endpoint)
            return _endpoint(endpoint)  # type: ignore[return-value]

    def endpoints(self, tenant: str) -> list[Endpoint]:
        with self.database.reading() as session:
            return [_endpoint(e) for e in Endpoints(session).active(tenant)]  # type: ignore[misc]

    def disable_endpoint(self, endpoint_id: str) -> Endpoint | None:
        with self.database.writing() as session:
            return _endpoint(Endpoints(session).disable(endpoint_id))

    def signing_secret(self, tenant: str, endpoint_id: str | None) -> str | None:
        """The secret a delivery is signed with: its endpoint's, or the tenant's; None for a disabled endpoint."""
        if endpoint_id is None:
            return self.webhook_secret(tenant)
        with self.database.reading() as session:
            found = Endpoints(session).of(tenant, endpoint_id)
            return found.secret if found is not None and found.disabled_at is None else None


def _key(row: StoredKey | None) -> ApiKey | None:
    return None if row is None else ApiKey.model_validate(row, from_attributes=True)


def _endpoint(row: WebhookEndpoint | None) -> Endpoint | None:
    return None if row is None else Endpoint.model_validate(row, from_attributes=True)


_imported: set[tuple[str, Path]] = set()
_importing = threading.Lock()


def imported(db: Database, path: Path) -> Database:
    """`db` with the keys file at `path` imported into it, once: checked the first time this process asks."""
    with _importing:
        if (db.address, path) not in _imported:
            import_keys_file(db, path)
            _imported.add((db.address, path))
    return db


def import_keys_file(db: Database, path: Path) -> bool:
    """Import a keys file of an earlier release: its keys (revoked ones too, with their session generations),
    tenants' webhook secrets, endpoints and session secret, each unless the database has it already. The file
    is kept; the same file (by digest) is imported once, whichever process comes first. Whether it was now."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    try:
        old = KeyFile.model_validate_json(data)
    except ValidationError as exc:
        raise DatabaseError(f"the keys file {path} cannot be imported: {exc.errors()[0]['msg']}") from None
    with db.writing() as session:
        if not FileImports(session).record(hashlib.sha256(data).hexdigest(), str(path.absolute())):
            return False
        tenants = Tenants(session)
        for tenant, secret in old.webhook_secrets.items():
            tenants.ensure(tenant, lambda secret=secret: secret)
        for key in old.keys:
            tenants.ensure(key.tenant, new_webhook_secret, since=key.created_at)
            Keys(session).add(StoredKey(**key.model_dump()))
        for endpoint in old.endpoints:
            tenants.ensure(endpoint.tenant, new_webhook_secret, since=endpoint.created_at)
            Endpoints(session).add(WebhookEndpoint(**endpoint.model_dump()))
        if old.session_secret:
            SiteSecrets(session).ensure(SESSION_SECRET, lambda: old.session_secret)
    return True


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def listing(store: KeyStore) -> str:
    rows = [
        f"{k.id}  {k.tenant:<16} created {k.created_at:%Y-%m-%d %H:%M}Z"
        + (f"  revoked {k.revoked_at:%Y-%m-%d %H:%M}Z" if k.revoked_at else "")
        for k in store.load().keys
    ]
    return "\n".join(rows) if rows else "no API keys (the API serves one local tenant on loopback only)"


def as_json(store: KeyStore) -> str:
    return json.dumps([k.model_dump(mode="json", exclude={"sha256"}) for k in store.load().keys], indent=2)

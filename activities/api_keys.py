"""API keys: each maps to a tenant and is stored only as its SHA-256 (`ATELIER_API_KEYS_FILE`).

`python -m starter api-key add TENANT` prints a new key once; `list` and `revoke` do the rest. The API
reads the file on every request it cannot answer from what it read last (the file's mtime), so a revoked
key is refused at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from activities.storage import write_atomic

TENANT = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
LOCAL_TENANT = "local"  # the one tenant of an API without keys (bound to loopback only)
KEY_PREFIX = "atl_"


class BadTenant(ValueError):
    pass


class ApiKey(BaseModel):
    id: str  # a short public name for the key (its hash's first characters)
    tenant: str
    sha256: str
    created_at: datetime
    revoked_at: datetime | None = None


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
    """The keys file, re-read when it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._read: tuple[float, KeyFile] | None = None

    def load(self) -> KeyFile:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return KeyFile()
        if self._read is None or self._read[0] != mtime:
            self._read = (mtime, KeyFile.model_validate_json(self.path.read_bytes()))
        return self._read[1]

    def save(self, keys: KeyFile) -> None:
        """Atomically, and private from the first byte (it holds the tenants' webhook secrets)."""
        write_atomic(self.path, keys.model_dump_json(indent=2).encode(), mode=0o600)

    def configured(self) -> bool:
        return any(k.revoked_at is None for k in self.load().keys)

    def tenant_of(self, key: str) -> str | None:
        wanted = digest(key)
        for k in self.load().keys:
            if k.revoked_at is None and secrets.compare_digest(k.sha256, wanted):
                return k.tenant
        return None

    def tenant_of_digest(self, sha256: str) -> str | None:
        """The tenant of the unrevoked key with this digest (a studio session names its key so)."""
        return next((k.tenant for k in self.load().keys if k.revoked_at is None and k.sha256 == sha256), None)

    def session_secret(self) -> str:
        keys = self.load()
        if keys.session_secret:
            return keys.session_secret
        keys = keys.model_copy(update={"session_secret": secrets.token_urlsafe(32)})
        self.save(keys)
        return keys.session_secret

    def add(self, tenant: str) -> tuple[str, ApiKey]:
        """A new key for `tenant`: the key itself (shown once) and what is stored of it."""
        check_tenant(tenant)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        stored = ApiKey(id=digest(key)[:12], tenant=tenant, sha256=digest(key), created_at=datetime.now(UTC))
        keys = self.load().model_copy(deep=True)
        keys.keys.append(stored)
        keys.webhook_secrets.setdefault(tenant, new_webhook_secret())
        self.save(keys)
        return key, stored

    def revoke(self, key_id: str) -> ApiKey | None:
        keys = self.load().model_copy(deep=True)
        found = next((k for k in keys.keys if k.id == key_id and k.revoked_at is None), None)
        if found is not None:
            found.revoked_at = datetime.now(UTC)
            self.save(keys)
        return found

    def webhook_secret(self, tenant: str) -> str:
        """The tenant's signing secret, made (and stored) the first time it is asked for."""
        keys = self.load()
        if tenant not in keys.webhook_secrets:
            keys = keys.model_copy(deep=True)
            keys.webhook_secrets[tenant] = new_webhook_secret()
            self.save(keys)
        return keys.webhook_secrets[tenant]

    def add_endpoint(self, tenant: str, url: str, events: list[str] | None) -> Endpoint:
        endpoint = Endpoint(
            id="ep_" + secrets.token_hex(8),
            tenant=tenant,
            url=url,
            events=events,
            secret=new_webhook_secret(),
            created_at=datetime.now(UTC),
        )
        keys = self.load().model_copy(deep=True)
        keys.endpoints.append(endpoint)
        self.save(keys)
        return endpoint

    def endpoints(self, tenant: str) -> list[Endpoint]:
        return [e for e in self.load().endpoints if e.tenant == tenant and e.disabled_at is None]

    def disable_endpoint(self, endpoint_id: str) -> Endpoint | None:
        keys = self.load().model_copy(deep=True)
        found = next((e for e in keys.endpoints if e.id == endpoint_id and e.disabled_at is None), None)
        if found is not None:
            found.disabled_at = datetime.now(UTC)
            self.save(keys)
        return found

    def signing_secret(self, tenant: str, endpoint_id: str | None) -> str | None:
        """The secret a delivery is signed with: its endpoint's, or the tenant's; None for a disabled endpoint."""
        if endpoint_id is None:
            return self.webhook_secret(tenant)
        found = next((e for e in self.load().endpoints if e.id == endpoint_id and e.tenant == tenant), None)
        return found.secret if found is not None and found.disabled_at is None else None


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

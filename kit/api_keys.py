"""API keys: each maps to a tenant and is stored only as its SHA-256 (`ATELIER_API_KEYS_FILE`).

`python -m starter api-key add TENANT` prints a new key once; `list` and `revoke` do the rest. The API
reads the file again whenever it changed on disk (a new file: every write replaces it), so a revoked key, or
a key whose studio sessions were ended by a sign-out in any API process, is refused at once. Every change
is made under an exclusive lock on `<file>.lock`, so a CLI's revoke and an API's sign-out never undo
each other.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field

from kit.files import write_atomic

TENANT = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
LOCAL_TENANT = "local"  # the one tenant of an API without keys (bound to loopback only)
KEY_PREFIX = "atl_"
T = TypeVar("T")


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
        self._read: tuple[tuple[int, int, int], KeyFile] | None = None

    def load(self) -> KeyFile:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return KeyFile()
        # every save is a new file (an atomic replace), so its inode tells a change that the clock's tick hides
        version = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
        if self._read is None or self._read[0] != version:
            self._read = (version, KeyFile.model_validate_json(self.path.read_bytes()))
        return self._read[1]

    def save(self, keys: KeyFile) -> None:
        """Atomically, and private from the first byte (it holds the tenants' webhook secrets)."""
        write_atomic(self.path, keys.model_dump_json(indent=2).encode(), mode=0o600)

    def _change(self, change: Callable[[KeyFile], T | None]) -> T | None:
        """Apply `change` to the file as it is now and save it, under an exclusive lock: two processes'
        changes (an API's sign-out, a CLI's revoke) never overwrite each other. Nothing is saved when
        `change` answers None."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            keys = self.load().model_copy(deep=True)
            found = change(keys)
            if found is not None:
                self.save(keys)
            return found

    def configured(self) -> bool:
        return any(k.revoked_at is None for k in self.load().keys)

    def find(self, key: str) -> ApiKey | None:
        """The unrevoked key `key` is."""
        wanted = digest(key)
        return next(
            (k for k in self.load().keys if k.revoked_at is None and secrets.compare_digest(k.sha256, wanted)), None
        )

    def signed_in(self, key_sha256: str, generation: int) -> ApiKey | None:
        """The unrevoked key a studio session names (by digest), while its sessions of `generation` last."""
        return next(
            (
                k
                for k in self.load().keys
                if k.revoked_at is None and k.sha256 == key_sha256 and k.session_generation == generation
            ),
            None,
        )

    def end_sessions(self, key_sha256: str) -> ApiKey | None:
        """Sign-out: every studio session of this key ends, in every API process that reads this file."""

        def move_on(keys: KeyFile) -> ApiKey | None:
            found = next((k for k in keys.keys if k.sha256 == key_sha256 and k.revoked_at is None), None)
            if found is not None:
                found.session_generation += 1
            return found

        return self._change(move_on)

    def session_secret(self) -> str:
        if secret := self.load().session_secret:
            return secret

        def make(keys: KeyFile) -> str:
            keys.session_secret = keys.session_secret or secrets.token_urlsafe(32)  # another process's may be there
            return keys.session_secret

        return self._change(make) or ""

    def add(self, tenant: str) -> tuple[str, ApiKey]:
        """A new key for `tenant`: the key itself (shown once) and what is stored of it."""
        check_tenant(tenant)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        stored = ApiKey(id=digest(key)[:12], tenant=tenant, sha256=digest(key), created_at=datetime.now(UTC))

        def append(keys: KeyFile) -> ApiKey:
            keys.keys.append(stored)
            keys.webhook_secrets.setdefault(tenant, new_webhook_secret())
            return stored

        self._change(append)
        return key, stored

    def revoke(self, key_id: str) -> ApiKey | None:
        return self._change(lambda keys: _stamped(keys.keys, "revoked_at", lambda k: k.id == key_id))

    def webhook_secret(self, tenant: str) -> str:
        """The tenant's signing secret, made (and stored) the first time it is asked for."""
        if secret := self.load().webhook_secrets.get(tenant):
            return secret
        return self._change(lambda keys: keys.webhook_secrets.setdefault(tenant, new_webhook_secret())) or ""

    def add_endpoint(self, tenant: str, url: str, events: list[str] | None) -> Endpoint:
        endpoint = Endpoint(
            id="ep_" + secrets.token_hex(8),
            tenant=tenant,
            url=url,
            events=events,
            secret=new_webhook_secret(),
            created_at=datetime.now(UTC),
        )

        def append(keys: KeyFile) -> Endpoint:
            keys.endpoints.append(endpoint)
            return endpoint

        self._change(append)
        return endpoint

    def endpoints(self, tenant: str) -> list[Endpoint]:
        return [e for e in self.load().endpoints if e.tenant == tenant and e.disabled_at is None]

    def disable_endpoint(self, endpoint_id: str) -> Endpoint | None:
        return self._change(lambda keys: _stamped(keys.endpoints, "disabled_at", lambda e: e.id == endpoint_id))

    def signing_secret(self, tenant: str, endpoint_id: str | None) -> str | None:
        """The secret a delivery is signed with: its endpoint's, or the tenant's; None for a disabled endpoint."""
        if endpoint_id is None:
            return self.webhook_secret(tenant)
        found = next((e for e in self.load().endpoints if e.id == endpoint_id and e.tenant == tenant), None)
        return found.secret if found is not None and found.disabled_at is None else None


def _stamped(items: list[T], stamp: str, wanted: Callable[[T], bool]) -> T | None:
    """The first of `items` that is `wanted` and not stamped yet (revoked, disabled), stamped now."""
    found = next((item for item in items if wanted(item) and getattr(item, stamp) is None), None)
    if found is not None:
        setattr(found, stamp, datetime.now(UTC))
    return found


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

"""What every route needs: the settings, one Temporal client, the artifact store, the keys, and who is
calling (`Caller`, from `Authorization: Bearer <key>`)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from activities.api_keys import LOCAL_TENANT, KeyStore
from activities.storage import ArtifactStore
from models.settings import Settings
from starter.api.problems import ApiProblem
from starter.api.sessions import SESSION_COOKIE, check_csrf, check_host, session_key
from starter.api.thumbnails import Thumbnails


@dataclass
class RateLimiter:
    """A token bucket per key: `per_minute` requests, refilled evenly."""

    per_minute: int
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key → (tokens, at)

    def retry_after(self, key: str) -> float:
        """0 when the request may go now (and takes its token), else the seconds until it may."""
        now = time.monotonic()
        tokens, at = self.buckets.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * self.per_minute / 60)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            return 0.0
        self.buckets[key] = (tokens, now)
        return (1 - tokens) * 60 / self.per_minute


@dataclass
class Service:
    settings: Settings
    client: Client
    store: ArtifactStore
    keys: KeyStore
    limiter: RateLimiter
    keyed: bool = False  # keys were configured when the API started, or it listens beyond loopback
    thumbnails: Thumbnails = field(default_factory=Thumbnails)
    secret: str = ""  # signs studio sessions and CSRF tokens (the keys file's)

    def needs_keys(self) -> bool:
        """Once keyed, always keyed: revoking the last key (or losing the file) locks everyone out, it never
        opens the API to a keyless local tenant."""
        self.keyed = self.keyed or self.keys.configured()
        return self.keyed


@dataclass(frozen=True)
class Caller:
    tenant: str
    keyed: bool  # False: the API has no keys and serves its one local tenant (on loopback)
    bucket: str = LOCAL_TENANT  # the rate bucket its requests are counted in

    def owns(self, workflow_id: str) -> bool:
        """A tenant's runs are the ids it was given (`<tenant>.<pipeline>-…`); the local tenant owns all."""
        return not self.keyed or workflow_id.startswith(f"{self.tenant}.")


async def described(svc: Service, workflow_id: str) -> WorkflowExecutionDescription | None:
    """The workflow's description, or None when there is no such workflow (a malformed id included)."""
    try:
        return await svc.client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return None
        raise


async def owned(svc: Service, caller: Caller, workflow_id: str, workflow_types: set[str], what: str = "run") -> Any:
    """The caller's workflow of one of these types, described; 404 for anyone else's, exactly as for none."""
    found = await described(svc, workflow_id) if caller.owns(workflow_id) else None
    if found is None or found.workflow_type not in workflow_types:
        raise ApiProblem(404, "not found", f"no {what} {workflow_id!r}")
    return found


def service(request: Request) -> Service:
    return request.app.state.service


def caller(request: Request, svc: Annotated[Service, Depends(service)]) -> Caller:
    """Who calls: the tenant of a valid, unrevoked key (401 otherwise) or of a studio session, limited to its
    rate (429). A browser's unsafe request from another site, or on a session without the page's CSRF token,
    is refused (403); so is a keyless request to a name that is not loopback (`sessions.check_host`).
    Decided once per request: a middleware that authenticates before the body is read leaves its answer in
    `request.state.caller` for the route."""
    if (known := getattr(request.state, "caller", None)) is not None:
        return known
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip() if scheme.lower() == "bearer" else ""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not svc.needs_keys():
        check_host(request, svc.settings.api_public_url)
        check_csrf(request, svc.secret, None)
        found = Caller(LOCAL_TENANT, keyed=False, bucket=LOCAL_TENANT)
    elif key:
        found = Caller(_tenant(svc.keys.tenant_of(key)), keyed=True, bucket=key)
    else:
        key_sha256 = session_key(svc.secret, cookie) if cookie else None
        tenant = _tenant(svc.keys.tenant_of_digest(key_sha256) if key_sha256 else None)
        found = Caller(tenant, keyed=True, bucket=f"session:{key_sha256}")
        check_csrf(request, svc.secret, cookie)
    reading_artifact = request.method == "GET" and request.url.path.startswith("/v1/artifacts/")
    if not reading_artifact:  # a page's pictures are free (a thumbnail that must be made is charged: `charge`)
        charge(svc, found)
    request.state.caller = found
    return found


def charge(svc: Service, caller: Caller) -> None:
    """Take one request from the caller's rate bucket, or refuse with 429 and `Retry-After`."""
    if (wait := svc.limiter.retry_after(caller.bucket)) > 0:
        raise ApiProblem(
            429, "too many requests", "this key's request rate is used up", {"Retry-After": str(math.ceil(wait))}
        )


def _tenant(tenant: str | None) -> str:
    if tenant is None:
        raise ApiProblem(401, "unauthorized", "send Authorization: Bearer <API key>", {"WWW-Authenticate": "Bearer"})
    return tenant


Svc = Annotated[Service, Depends(service)]
Who = Annotated[Caller, Depends(caller)]

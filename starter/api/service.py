"""What every route needs: the settings, one Temporal client, the artifact store, the keys, the model catalog,
and who is calling (`Caller`, from `Authorization: Bearer <key>` or a studio session of a key: one rate bucket
per key). Wrong credentials are counted per client address, and an address that sends too many is refused a
while."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from temporalio.client import Client, WorkflowExecutionDescription

from kit.api_keys import LOCAL_TENANT, ApiKey, KeyStore
from kit.db.uploads import UploadMarks
from kit.run_reading import describe_or_none
from kit.storage import ArtifactStore
from kit.urls import Urls
from models.catalog import Catalog, load_catalog
from models.settings import Settings
from starter.api.errors import NotFound, TooMany, Unauthorized
from starter.api.originals import Originals
from starter.api.sessions import SESSION_COOKIE, check_csrf, check_host, read_session
from starter.api.streams import Streams
from starter.api.thumbnails import Thumbnails

log = logging.getLogger("atelier.api")


@dataclass
class RateLimiter:
    """A token bucket per key: `per_minute` requests, refilled evenly. At most `most` buckets are kept: full
    ones (the same as none) go first, then the oldest."""

    per_minute: int
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key → (tokens, at)
    most: int = 100_000
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # sync routes run in threads

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self.buckets.get(key, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - at) * self.per_minute / 60)

    def _wait(self, tokens: float) -> float:
        return 0.0 if tokens >= 1 else (1 - tokens) * 60 / self.per_minute

    def wait(self, key: str) -> float:
        """0 when `key` has a token now, else the seconds until it has; takes none."""
        with self.lock:
            return self._wait(self._tokens(key, time.monotonic()))

    def retry_after(self, key: str) -> float:
        """0 when the request may go now (and takes its token), else the seconds until it may."""
        with self.lock:
            now = time.monotonic()
            tokens = self._tokens(key, now)
            if key not in self.buckets and len(self.buckets) >= self.most:
                self._prune(now)
            self.buckets[key] = (tokens - 1 if tokens >= 1 else tokens, now)
            return self._wait(tokens)

    def _prune(self, now: float) -> None:
        self.buckets = {k: b for k, b in self.buckets.items() if self._tokens(k, now) < self.per_minute}
        for key in list(self.buckets)[: max(0, len(self.buckets) - self.most * 3 // 4)]:
            del self.buckets[key]


@dataclass
class Service:
    settings: Settings
    client: Client
    store: ArtifactStore
    keys: KeyStore
    limiter: RateLimiter
    keyed: bool = False  # keys were configured when the API started, or it listens beyond loopback
    thumbnails: Thumbnails = field(init=False)  # pictures sized down (their threads, queue and pixel cap)
    streams: Streams = field(init=False)  # the event streams open in this process
    admission_lines: dict[str, Any] = field(default_factory=dict)  # tenant → its creates on their way to admission
    originals: Originals = field(default_factory=Originals)  # whole artifacts read for an answer
    secret: str = ""  # signs studio sessions and CSRF tokens (the database's)
    failures: RateLimiter = field(init=False)  # wrong credentials, per client address
    urls: Urls = field(init=False)  # the links it hands out, at its public address
    uploads: UploadMarks = field(init=False)  # which tenant uploaded which reference image (in the keys' database)
    catalog: Catalog = field(init=False)  # the models a run may ask for (read once, when the API starts)

    def __post_init__(self) -> None:
        self.failures = RateLimiter(self.settings.auth_failures_per_minute)
        settings = self.settings
        self.thumbnails = Thumbnails(settings.thumbnail_workers, settings.thumbnail_queue, settings.upload_max_pixels)
        self.streams = Streams(
            self.store, settings.streams_per_tenant, settings.streams_per_process, settings.stream_max_s
        )
        self.urls = Urls(self.settings)
        self.uploads = UploadMarks(self.keys.database)
        self.catalog = load_catalog(settings)

    def needs_keys(self) -> bool:
        """Once keyed, always keyed: revoking the last key locks everyone out, it never
        opens the API to a keyless local tenant."""
        self.keyed = self.keyed or self.keys.configured()
        return self.keyed


@dataclass(frozen=True)
class Caller:
    tenant: str
    keyed: bool  # False: the API has no keys and serves its one local tenant (on loopback)
    bucket: str = LOCAL_TENANT  # the rate bucket its requests are counted in: its key's digest (bearer or session)

    def owns(self, workflow_id: str) -> bool:
        """A tenant's runs are the ids it was given (`<tenant>.<pipeline>-…`); the local tenant owns all."""
        return not self.keyed or workflow_id.startswith(f"{self.tenant}.")

    @property
    def keyed_tenant(self) -> str | None:
        """The tenant its key names; None for the keyless API's local tenant (its runs carry no tenant, and
        its knowledge base is the shared one the CLI's `kb` manages)."""
        return self.tenant if self.keyed else None


async def described(svc: Service, workflow_id: str) -> WorkflowExecutionDescription | None:
    """The workflow's description, or None when there is no such workflow (a malformed id included)."""
    return await describe_or_none(svc.client, workflow_id)


async def owned(svc: Service, caller: Caller, workflow_id: str, workflow_types: set[str], what: str = "run") -> Any:
    """The caller's workflow of one of these types, described; 404 for anyone else's, exactly as for none."""
    found = await described(svc, workflow_id) if caller.owns(workflow_id) else None
    if found is None or found.workflow_type not in workflow_types:
        raise NotFound(what, workflow_id)
    return found


def service(request: Request) -> Service:
    return request.app.state.service


def caller(request: Request, svc: Annotated[Service, Depends(service)]) -> Caller:
    """Who calls: the tenant of a valid, unrevoked key (401 otherwise) or of a studio session, limited to its
    key's rate (429). A browser's unsafe request from another site, or on a session without the page's CSRF
    token, is refused (403); so is a keyless request to a name that is not loopback (`sessions.check_host`).
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
        stored = attempt(svc, request, svc.keys.find(key))
        found = Caller(stored.tenant, keyed=True, bucket=stored.sha256)
    elif cookie:
        session = read_session(svc.secret, cookie)
        stored = attempt(svc, request, svc.keys.signed_in(*session) if session else None, guessed=False)
        found = Caller(stored.tenant, keyed=True, bucket=stored.sha256)  # the same bucket as the key's bearer
        check_csrf(request, svc.secret, cookie)
    else:
        raise Unauthorized()  # nothing was guessed: not counted
    reading_artifact = request.method == "GET" and request.url.path.startswith("/v1/artifacts/")
    if not reading_artifact:  # a page's pictures are free (a thumbnail that must be made is charged: `charge`)
        charge(svc, found)
    request.state.caller = found
    return found


def client_address(request: Request) -> str:
    """Where the request comes from, as uvicorn saw it: behind a reverse proxy that is the proxy, unless
    uvicorn trusts it (`FORWARDED_ALLOW_IPS`; loopback by default) and takes the address it forwards."""
    return request.client.host if request.client else "unknown"


def attempt(svc: Service, request: Request, stored: ApiKey | None, guessed: bool = True) -> ApiKey:
    """The key that a request's credentials named (`stored`), or 401. Valid credentials always pass: keys are
    256-bit, so the throttle bounds what wrong ones cost, and refusing a right key would let anyone sharing an
    address (a proxy, a NAT) lock everyone out. A failed guess (a wrong key, a failed sign-in) counts against
    the client's address; past `ATELIER_AUTH_FAILURES_PER_MINUTE` of them, its further guesses get 429 until
    the bucket refills (one more each 60/N seconds). A session cookie is no guess (it is signed by this
    server): a stale one, signed out, expired or of a revoked key, is a plain 401, so an open tab polling with
    it locks nobody out."""
    if stored is not None:
        return stored
    if not guessed:
        raise Unauthorized()
    address = client_address(request)
    if (wait := svc.failures.wait(address)) > 0:
        raise TooMany("too many requests", "too many failed sign-ins (wrong keys) from this address", wait)
    svc.failures.retry_after(address)
    if svc.failures.wait(address) > 0:  # logged once per time it runs out, not on each refusal after
        log.warning("client %s: too many failed sign-ins; its guesses are refused until its bucket refills", address)
    raise Unauthorized()


def charge(svc: Service, caller: Caller) -> None:
    """Take one request from the caller's rate bucket, or refuse with 429 and `Retry-After`."""
    if (wait := svc.limiter.retry_after(caller.bucket)) > 0:
        raise TooMany("too many requests", "this key's request rate is used up", wait)


Svc = Annotated[Service, Depends(service)]
Who = Annotated[Caller, Depends(caller)]

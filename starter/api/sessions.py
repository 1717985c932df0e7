"""Browsers: the studio's sign-in turns a key into an HttpOnly, SameSite=Strict session cookie naming the
key's digest and the key's session generation (signed; revoking the key ends the session, and so does a
sign-out, which moves the generation on in the database), and no unsafe request a browser sends from another
site gets through. Every unsafe browser request must come from this site (`Sec-Fetch-Site`, else `Origin`);
one riding on a session must also carry the page's CSRF token (`X-CSRF-Token`, or a plain form's field).
A keyless API answers only to its loopback names (or its public URL's host), so a rebound DNS name cannot
make another site's page same-origin with it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import NamedTuple
from urllib.parse import urlsplit

from fastapi import Request

from starter.api.errors import Forbidden
from starter.api.hosts import LOOPBACK_NAMES, host_name

SESSION_COOKIE = "atelier_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_S = 7 * 24 * 3600
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _mac(secret: str, text: str) -> str:
    if not secret:
        raise ValueError("no session secret")  # an empty key would sign anything anyone can forge
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


class Session(NamedTuple):
    """What a valid session cookie names: its key (by digest) and the key's session generation then."""

    key_sha256: str
    generation: int


def new_session(secret: str, key_sha256: str, generation: int, now: float | None = None) -> str:
    expires = int((now or time.time()) + SESSION_S)
    text = f"{key_sha256}.{generation}.{expires}"
    return f"{text}.{_mac(secret, text)}"


def read_session(secret: str, cookie: str, now: float | None = None) -> Session | None:
    """The session a valid, unexpired cookie names; None for anything else (a cookie made before sessions
    had generations included: its holder signs in again)."""
    parts = cookie.split(".")
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts[1:3]):
        return None
    key_sha256, generation, expires, mac = parts
    if int(expires) < (now or time.time()) or not _same(mac, _mac(secret, f"{key_sha256}.{generation}.{expires}")):
        return None
    return Session(key_sha256, int(generation))


def csrf_token(secret: str, cookie: str) -> str:
    """The token a signed-in page embeds and its scripts send back: bound to the session."""
    return _mac(secret, f"csrf\0{cookie}")[:40]


def from_this_site(request: Request) -> bool:
    """Whether a request a browser may have sent comes from this site's own pages. API clients (curl,
    SDKs) send neither header and pass: they cannot be steered by another site."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"{request.url.scheme}://{host}", f"http://{host}", f"https://{host}")


def check_csrf(request: Request, secret: str, cookie: str | None, sent: str | None = None) -> None:
    """An unsafe request must come from this site; on a session it must also carry the page's token (in
    `X-CSRF-Token`, or `sent`: a plain form's field)."""
    if request.method not in UNSAFE:
        return
    if not from_this_site(request):
        raise Forbidden("a browser may change things only from this site's own pages")
    if cookie is None:
        return
    sent = request.headers.get(CSRF_HEADER, "") if sent is None else sent
    if not sent or not _same(sent, csrf_token(secret, cookie)):
        raise Forbidden(f"a signed-in {request.method} must carry the page's {CSRF_HEADER}")


def check_host(request: Request, public_url: str | None) -> None:
    """A keyless API serves its loopback names only (and its public URL's host, when set)."""
    host = request.headers.get("host") or ""
    allowed = LOOPBACK_NAMES | {(urlsplit(public_url).hostname or "").lower()} if public_url else LOOPBACK_NAMES
    if host_name(host) not in allowed:
        raise Forbidden(f"this keyless API answers to loopback names only, not {host!r}")

"""The studio's sign-in: a key becomes an HttpOnly, SameSite=Strict session cookie naming the key's digest
(signed, so revoking the key ends the session), and every unsafe request a browser makes carries a CSRF
token (`X-CSRF-Token`) derived from the session, or from no session on a keyless API."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from fastapi import Request

from starter.api.problems import ApiProblem

SESSION_COOKIE = "atelier_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_S = 7 * 24 * 3600
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _mac(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def new_session(secret: str, key_sha256: str, now: float | None = None) -> str:
    expires = int((now or time.time()) + SESSION_S)
    return f"{key_sha256}.{expires}.{_mac(secret, f'{key_sha256}.{expires}')}"


def session_key(secret: str, cookie: str, now: float | None = None) -> str | None:
    """The key digest a valid, unexpired session cookie names; None for anything else."""
    key_sha256, _, rest = cookie.partition(".")
    expires, _, mac = rest.partition(".")
    if not expires.isdigit() or int(expires) < (now or time.time()):
        return None
    return key_sha256 if secrets.compare_digest(mac, _mac(secret, f"{key_sha256}.{expires}")) else None


def csrf_token(secret: str, cookie: str | None) -> str:
    """The token pages embed and scripts send back; bound to the session (or to none)."""
    return _mac(secret, f"csrf\0{cookie or ''}")[:40]


def from_browser(request: Request) -> bool:
    """Browsers name where a request comes from; API clients (curl, SDKs) send neither header."""
    return "origin" in request.headers or "sec-fetch-site" in request.headers


def check_csrf(request: Request, secret: str, cookie: str | None, sent: str | None = None) -> None:
    """An unsafe request on a session, or from a browser to a keyless API, must carry the page's token (in
    `X-CSRF-Token`, or `sent`: a plain form's field)."""
    if request.method not in UNSAFE or (cookie is None and not from_browser(request)):
        return
    sent = request.headers.get(CSRF_HEADER, "") if sent is None else sent
    if not sent or not secrets.compare_digest(sent, csrf_token(secret, cookie)):
        raise ApiProblem(403, "forbidden", f"a browser's {request.method} must carry the page's {CSRF_HEADER}")

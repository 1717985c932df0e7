"""Who is looking: the caller of the API (keyless on loopback: the local tenant), or a signed-in session;
the sign-in page that turns a key into the session cookie (failed sign-ins count against the address, as
wrong keys do), and sign-out, which ends every session of the key, in every API process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from kit.urls import Urls
from models.pipelines import PIPELINES
from starter.api.errors import ApiProblem, Unauthorized
from starter.api.service import Caller, Service, Svc, attempt, caller, service
from starter.api.sessions import SESSION_COOKIE, SESSION_S, check_csrf, csrf_token, new_session, read_session

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)
SIGN_IN_ERRORS = {401: "That key is not valid (or was revoked).", 429: "Too many failed sign-ins from here: wait"}
urls = Urls()  # the pages' links: paths on this site
templates.env.globals.update(urls=urls, pipelines=[spec for spec in PIPELINES.values() if spec.form])


class SignInNeeded(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


@dataclass(frozen=True)
class Viewer:
    caller: Caller
    csrf: str
    signed_in: bool  # a session: the page offers sign-out


def viewer(request: Request, svc: Annotated[Service, Depends(service)]) -> Viewer:
    """The page's caller, or a redirect to sign in when the API needs a key and there is no session."""
    try:
        found = caller(request, svc)
    except Unauthorized as exc:
        raise SignInNeeded(request.url.path + (f"?{request.url.query}" if request.url.query else "")) from exc
    cookie = request.cookies.get(SESSION_COOKIE) if found.keyed else None
    return Viewer(found, csrf_token(svc.secret, cookie) if cookie else "", signed_in=cookie is not None)


Looker = Annotated[Viewer, Depends(viewer)]


def page(request: Request, name: str, look: Viewer | None, svc: Service, **context: Any) -> Response:
    """A studio page: every template gets the viewer, its CSRF token and the Temporal UI's address."""
    return templates.TemplateResponse(
        request,
        name,
        {"viewer": look, "csrf": look.csrf if look else "", "temporal_ui": svc.settings.temporal_ui_url, **context},
    )


def safe_next(target: str) -> str:
    """Only a path on this site (never `//elsewhere` or a full URL)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else urls.runs_page()


@router.get("/signin")
async def signin_page(request: Request, svc: Svc, next: str = "/") -> Response:
    return page(request, "signin.html", None, svc, next=safe_next(next))


@router.post("/signin")
async def signin(request: Request, svc: Svc, key: Annotated[str, Form()] = "", next: str = "/") -> Response:
    check_csrf(request, svc.secret, None)  # from this site's own sign-in page only (no login CSRF)
    try:
        stored = attempt(svc, request, svc.keys.find(key.strip()) if key.strip() else None)
    except ApiProblem as exc:
        error = SIGN_IN_ERRORS[exc.problem.status]
        if wait := exc.headers.get("Retry-After"):
            error = f"{error} {wait} s before trying again."
        response = page(request, "signin.html", None, svc, next=safe_next(next), error=error)
        response.status_code = exc.problem.status
        response.headers.update({k: v for k, v in exc.headers.items() if k == "Retry-After"})
        return response
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        new_session(svc.secret, stored.sha256, stored.session_generation),
        max_age=SESSION_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or svc.settings.api_url.startswith("https:"),
    )
    return response


@router.post("/signout")
async def signout(request: Request, svc: Svc, csrf: Annotated[str, Form()] = "") -> Response:
    """Ends every session of the key (a copied cookie too, at any API process on the same database)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    check_csrf(request, svc.secret, cookie, csrf)
    session = read_session(svc.secret, cookie) if cookie else None
    if session is not None and svc.keys.signed_in(*session) is not None:
        await asyncio.to_thread(svc.keys.end_sessions, session.key_sha256)
    response = RedirectResponse(urls.signin_page(), status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    return response

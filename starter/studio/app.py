"""The studio's part of the app (`starter.app` installs it on the API's): its pages, its static files, and
errors on a page as a page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from starter.api.errors import ApiProblem
from starter.api.sessions import SESSION_COOKIE
from starter.studio import access, experiment_page, life_pages, new_pages, rate_pages, run_pages, runs_page
from starter.studio.access import SignInNeeded, templates, urls

STATIC = Path(__file__).parent / "static"
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
API_PATHS = ("/v1/", "/docs", "/redoc", "/openapi.json")  # /docs loads Swagger UI from its CDN


class NoFraming:
    """ASGI middleware: nothing of the API's may be framed by another site (clickjacking a studio button),
    nothing is content-sniffed, and studio pages run this site's own script only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        page = not scope["path"].startswith(API_PATHS)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                if page:
                    headers["Content-Security-Policy"] = PAGE_POLICY
            await send(message)

        await self.app(scope, receive, sending)


class CompressedPages:
    """ASGI middleware: the studio's pages and static files gzipped for a browser that takes it (an experiment's
    page of 3,000 cells is a megabyte of repetitive HTML); the API's answers are left as they are."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=4096)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        page = scope["type"] == "http" and not scope["path"].startswith(API_PATHS)
        await (self.gzip if page else self.app)(scope, receive, send)


def install(app: FastAPI) -> None:
    for module in (access, runs_page, run_pages, new_pages, experiment_page, rate_pages, life_pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(NoFraming)
    app.add_middleware(CompressedPages)

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, exc: SignInNeeded) -> Response:
        answer = RedirectResponse(urls.signin_page(exc.path), status_code=303)
        if SESSION_COOKIE in request.cookies:  # a stale session (signed out, expired, revoked): forget it
            answer.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
        return answer

    for kind in (ApiProblem, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(kind, _as_page(app.exception_handlers[kind]))


def _as_page(answer_problem: Any) -> Any:
    """The API answers a problem; a studio page (a browser asking for HTML) gets the same as a page."""

    async def handler(request: Request, exc: Exception) -> Response:
        problem = await answer_problem(request, exc)
        if request.url.path.startswith(API_PATHS) or "text/html" not in request.headers.get("accept", ""):
            return problem
        body = json.loads(problem.body)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in body.get("errors", [])) or body.get("detail")
        context = {"viewer": None, "csrf": "", "title": body.get("title", "error"), "detail": detail}
        kept = {k: v for k, v in problem.headers.items() if k.lower() in ("retry-after", "www-authenticate")}
        return templates.TemplateResponse(
            request, "problem.html", context, status_code=problem.status_code, headers=kept
        )

    return handler

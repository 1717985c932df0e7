"""The studio's part of the API's app: its pages, its static files, and errors on a page as a page."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from starter.api.problems import ApiProblem, respond
from starter.studio import access, new_pages, run_pages, runs_page
from starter.studio.access import SignInNeeded, templates

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    for module in (access, runs_page, run_pages, new_pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse(f"/signin?next={quote(exc.path, safe='')}", status_code=303)

    @app.exception_handler(ApiProblem)
    async def _problem(request: Request, exc: ApiProblem) -> Response:
        """The API answers a problem; a studio page answers the same status as a page."""
        if request.url.path.startswith("/v1/") or "text/html" not in request.headers.get("accept", ""):
            return respond(exc.problem, exc.headers)
        context = {"viewer": None, "csrf": "", "title": exc.problem.title, "detail": exc.problem.detail}
        return templates.TemplateResponse(request, "problem.html", context, status_code=exc.problem.status)

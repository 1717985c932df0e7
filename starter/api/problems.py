"""Errors as RFC 9457 problem details (`application/problem+json`): bad input names the field, and no
request gets a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.validation import field_problems

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("atelier.api")


class FieldProblem(BaseModel):
    field: str  # dotted path in the request, e.g. body.max_iterations or query.limit
    message: str


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldProblem] = Field(default_factory=list)


class ApiProblem(Exception):
    """Raised by a route: answered as a problem with this status."""

    def __init__(self, status: int, title: str, detail: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail or title)
        self.problem = Problem(title=title, status=status, detail=detail)
        self.headers = headers or {}


def invalid(problems: list[FieldProblem]) -> JSONResponse:
    first = problems[0] if problems else FieldProblem(field="", message="invalid request")
    return respond(
        Problem(title="invalid request", status=422, detail=f"{first.field}: {first.message}", errors=problems)
    )


def respond(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True), problem.status, headers=headers, media_type=PROBLEM_JSON
    )


def install(app: FastAPI) -> None:
    """Every error the API answers is a problem."""

    @app.exception_handler(RequestValidationError)
    async def _request(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = getattr(request.scope.get("route"), "body_field", None)
        model = body.field_info.annotation if body is not None else None
        model = model if isinstance(model, type) and issubclass(model, BaseModel) else None
        return invalid([FieldProblem(**p) for p in field_problems(exc.errors(), model, skip=1)])

    @app.exception_handler(ApiProblem)
    async def _problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return respond(exc.problem, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return respond(Problem(title=title, status=exc.status_code, detail=str(exc.detail)), exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return respond(Problem(title="internal error", status=500, detail=type(exc).__name__))

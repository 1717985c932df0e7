"""Errors as RFC 9457 problem details (`application/problem+json`): every `errors.ApiProblem` raised, bad
input naming its field, and no request gets a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.validation import field_problems
from starter.api.errors import ApiProblem, FieldProblem, Internal, Invalid, Problem

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("atelier.api")
PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
RESPONSES: dict[int | str, dict] = {
    status: {"description": title, "content": PROBLEM_CONTENT}
    for status, title in {
        400: "a body that cannot be read (not JSON, not UTF-8, a broken form)",
        401: "no valid API key",
        402: "the tenant's daily budget is spent",
        404: "no such resource (or another tenant's)",
        409: "conflicts with the resource's state, or an Idempotency-Key reused with another body",
        413: "a body over its route's limit",
        422: "invalid input: each problem names its field",
        429: "too many requests or runs at once (see Retry-After)",
        500: "an internal error (never for bad input)",
        503: "no worker answered in time",
    }.items()
}


def respond(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True), problem.status, headers=headers, media_type=PROBLEM_JSON
    )


def install(app: FastAPI) -> None:
    """Every error the API answers is a problem (and the OpenAPI document says so)."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            spec = generate()
            schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            components.update(schema.pop("$defs", {}))
            components["Problem"] = schema
            for operations in spec["paths"].values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
                    operation.setdefault("responses", {})["422"] = RESPONSES[422]
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def _request(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = getattr(request.scope.get("route"), "body_field", None)
        model = body.field_info.annotation if body is not None else None
        model = model if isinstance(model, type) and issubclass(model, BaseModel) else None
        return respond(Invalid.of([FieldProblem(**p) for p in field_problems(exc.errors(), model, skip=1)]).problem)

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
        return respond(Internal(exc).problem)

"""What can go wrong, as one hierarchy under the one problem type: services and routes raise these, never
return them, and `starter.api.problems` answers each as RFC 9457 problem details (the Studio as a page)."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field


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
    """An error answered as a problem with this status; the classes below are its kinds."""

    def __init__(self, status: int, title: str, detail: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail or title)
        self.problem = Problem(title=title, status=status, detail=detail)
        self.headers = headers or {}


class Unauthorized(ApiProblem):
    """401: no valid key (or studio session)."""

    def __init__(self) -> None:
        detail = "send Authorization: Bearer <API key>"
        super().__init__(401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"})


class BudgetSpent(ApiProblem):
    """402: the tenant's dollars for the day are spent or held."""

    def __init__(self, detail: str) -> None:
        super().__init__(402, "daily budget spent", detail)


class Forbidden(ApiProblem):
    """403: a request this API does not take from where it comes (another site, an unknown host name)."""

    def __init__(self, detail: str) -> None:
        super().__init__(403, "forbidden", detail)


class NotFound(ApiProblem):
    """404: no such thing, or another tenant's (the same answer)."""

    def __init__(self, what: str, name: str) -> None:
        super().__init__(404, "not found", f"no {what} {name!r}")


class Conflict(ApiProblem):
    """409: not now, or not for this thing's state (a run still running, a conversation that ended)."""

    def __init__(self, title: str, detail: str, retry_after_s: int | None = None) -> None:
        super().__init__(409, title, detail, {"Retry-After": str(retry_after_s)} if retry_after_s else None)


class ContentTooLarge(ApiProblem):
    """413: a body over its route's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "content too large", f"this route takes a body of at most {limit} bytes")
        self.problem.errors = [FieldProblem(field="body", message=f"larger than {limit} bytes")]


class Invalid(ApiProblem):
    """422: input that is wrong, naming its field (`Invalid.of`: a request's every problem)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(422, "invalid request", f"{field}: {message}")
        self.problem.errors = [FieldProblem(field=field, message=message)]

    @classmethod
    def of(cls, problems: list[FieldProblem]) -> Invalid:
        """Every problem, the first in the detail."""
        first = problems[0] if problems else FieldProblem(field="", message="invalid request")
        invalid = cls(first.field, first.message)
        invalid.problem.errors = problems
        return invalid


class Refused(ApiProblem):
    """422: well-formed input that cannot be done (a message the conversation refuses, a picture too large)."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(422, title, detail)


class TooMany(ApiProblem):
    """429: too many requests or runs at once; `Retry-After` says when to come back."""

    def __init__(self, title: str, detail: str, retry_after_s: float) -> None:
        super().__init__(429, title, detail, {"Retry-After": str(math.ceil(retry_after_s))})


class Unavailable(ApiProblem):
    """503: busy, or what the request waits on did not answer; `Retry-After` says when to come back."""

    def __init__(self, title: str, detail: str, retry_after_s: int) -> None:
        super().__init__(503, title, detail, {"Retry-After": str(retry_after_s)})


class NoWorker(Unavailable):
    """503: no workflow worker answered in time."""

    def __init__(self, detail: str = "no workflow worker answered in time") -> None:
        super().__init__("no worker answered", detail, 5)


class Internal(ApiProblem):
    """500: an error of ours, named by its type only (never a traceback)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(500, "internal error", type(error).__name__)

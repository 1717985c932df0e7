"""Pydantic's errors as field problems: a dotted field path and a readable one-line message each.

One wording for every way a job enters: the CLI prints the first problem with its flag in place of the
field (`starter.common.validated`), the HTTP API answers all of them as 422 problem details.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo


class FieldProblem(TypedDict):
    field: str  # dotted path in the model, e.g. budget.llm_calls or references.0 ("" for the whole model)
    message: str  # e.g. "must be between 1 and 20"


def field_problems(
    exc: ValidationError | Sequence[Any], model: type[BaseModel] | None = None, skip: int = 0
) -> list[FieldProblem]:
    """Every error of `exc` (or of pydantic's error list), in pydantic's order, as a field path and a
    message (duplicates once).

    `model` is the model that was validated: with it, a bound is worded from the field's own bounds
    ("must be between 1 and 20"); without, from the bound that was crossed ("must be 1 or more"). The
    first `skip` steps of each location are not the model's (FastAPI's `body`)."""
    problems: list[FieldProblem] = []
    for error in exc.errors() if isinstance(exc, ValidationError) else exc:
        loc = tuple(part for part in error.get("loc", ()) if not _is_tag(part))
        problem = FieldProblem(field=".".join(map(str, loc)), message=_message(error, _field(model, loc[skip:])))
        if problem not in problems:
            problems.append(problem)
    return problems


_TYPE_TAGS = {"str", "int", "float", "bool", "bytes", "none", "list", "dict", "tuple", "set", "url", "decimal"}


def _is_tag(part: str | int) -> bool:
    """A step of pydantic's location that is no field: a union member or a validator, e.g. `str`,
    `ArtifactRef`, `literal['auto']`, `function-after[_reference(), ...]` (an alias such as
    `ATELIER_PRICES`, or a dict key such as `gpt-4o`, is kept)."""
    if not isinstance(part, str):
        return False
    return "[" in part or part in _TYPE_TAGS or (part.isidentifier() and part[:1].isupper() and not part.isupper())


def _message(error: Any, field: FieldInfo | None) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in {"greater_than_equal", "less_than_equal"}:
        low, high = _bounds(field)
        low = ctx.get("ge", low) if low is None else low
        high = ctx.get("le", high) if high is None else high
        if low is not None and high is not None:
            return f"must be between {_number(low)} and {_number(high)}"
        return f"must be {_number(low)} or more" if low is not None else f"must be {_number(high)} or less"
    return str(error["msg"]).removeprefix("Value error, ")


def _bounds(field: FieldInfo | None) -> tuple[Any, Any]:
    low = high = None
    for rule in field.metadata if field is not None else ():
        if isinstance(rule, annotated_types.Ge):
            low = rule.ge
        elif isinstance(rule, annotated_types.Le):
            high = rule.le
        elif isinstance(rule, annotated_types.Interval):
            low, high = rule.ge if rule.ge is not None else low, rule.le if rule.le is not None else high
    return low, high


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _field(model: type[BaseModel] | None, loc: tuple[str | int, ...]) -> FieldInfo | None:
    """The field that `loc` ends at, walking nested models (list items and optional models included)."""
    field: FieldInfo | None = None
    current = model
    for part in loc:
        if isinstance(part, int):  # an item of a list: not the list's own field
            field = None
            continue
        if current is None or part not in current.model_fields:
            return None
        field = current.model_fields[part]
        current = _model_in(field.annotation)
    return field


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is Annotated:
        return _model_in(get_args(annotation)[0])
    if get_origin(annotation) in {Union, types.UnionType, list, tuple, set, frozenset}:
        found = [m for m in map(_model_in, get_args(annotation)) if m is not None]
        return found[0] if len(found) == 1 else None
    return None

"""A run's input, validated by the workflow itself.

Workflows take their input as plain JSON data and validate it here, first thing: bad input fails the
run at once with a clear, non-retryable error. Any other error in workflow code, a pydantic one from
a bug included, fails only the workflow task, which Temporal retries, so a fixed deploy carries on.
"""

from __future__ import annotations

from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def parse_input(model: type[M], raw: Any, context: dict[str, Any] | None = None) -> M:
    """`raw` as `model`, or a non-retryable `InvalidInput` error naming the first bad field."""
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or model.__name__
        raise ApplicationError(
            f"invalid {model.__name__}: {where}: {first['msg']}", type="InvalidInput", non_retryable=True
        ) from None

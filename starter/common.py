"""What every CLI command shares: one-line usage errors, the console, connecting, reading existing runs."""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from rich.console import Console
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from kit.connection import TemporalSetupError, connect
from kit.run_reading import bounded_query as bounded_query  # the one bounded query, for the commands
from models.catalog import Catalog, CatalogError, ModelChoice, load_catalog
from models.settings import Settings
from models.validation import field_problems

M = TypeVar("M", bound=BaseModel)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
attached: dict[str, str] = {}  # the run this CLI invocation follows, for the Ctrl-C message


class UsageError(Exception):
    """Bad input: reported as one line on stderr with exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass(frozen=True)
class Pipeline:
    """How the generic commands (status, result) handle one workflow type."""

    state: Callable[[WorkflowHandle], Awaitable[Any]]
    result: Callable[[Client, str, Settings, Path | None], Awaitable[int]]


def default_id(kind: str, text: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{kind}-{stamp}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


async def connect_or_explain(settings: Settings) -> Client:
    """A client; a configuration the cluster refuses is bad input (one line, exit 2)."""
    try:
        return await connect(settings)
    except TemporalSetupError as exc:
        raise UsageError(str(exc)) from None
    except RuntimeError as exc:
        raise RuntimeError(f"{exc} (start it with `make demo` or `python -m starter server`)") from None


def validated(model: type[M], flags: Mapping[str, str] | None = None, **fields: Any) -> M:
    """Build a job from what the user typed; its first problem becomes a one-line usage error naming the
    flag: `flags` maps a field path (or the start of one, e.g. `budget.cost`) to the flag it came from;
    a field it does not name is shown by its path."""
    try:
        return model(**fields)
    except ValidationError as exc:
        first = field_problems(exc, model)[0]
        raise UsageError(f"{flag_of(first['field'], flags or {})}: {first['message']}") from exc


def flag_of(field: str, flags: Mapping[str, str]) -> str:
    """The flag of a dotted field path: its longest start that `flags` names, else the path itself."""
    parts = field.split(".")
    for end in range(len(parts), 0, -1):
        if (flag := flags.get(".".join(parts[:end]))) is not None:
            return flag
    return field or "input"


# the flag each kind of model is chosen with (`add_model_flags`)
MODEL_FLAGS = {"text": "--model", "image": "--image-model", "eval": "--eval-model"}


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    for kind, flag in MODEL_FLAGS.items():
        parser.add_argument(
            flag, metavar="ID", help=f"the {kind} model, by catalog id (`atelier models`; default: the catalog's)"
        )


def catalog_or_explain(settings: Settings) -> Catalog:
    """The catalog in use (`models.catalog.load_catalog`); one that cannot serve is bad input (one line)."""
    try:
        return load_catalog(settings)
    except CatalogError as exc:
        raise UsageError(str(exc)) from None


def chosen_models(args: argparse.Namespace, settings: Settings) -> ModelChoice:
    """The run's `--model`, `--image-model` and `--eval-model`, checked as the API checks a create's `models`
    (`Catalog.problem`): an unknown id, or one of another kind, is a usage error naming its flag."""
    typed = {kind: getattr(args, flag.removeprefix("--").replace("-", "_")) for kind, flag in MODEL_FLAGS.items()}
    choice = validated(ModelChoice, MODEL_FLAGS, **typed)
    if problem := catalog_or_explain(settings).problem(choice):
        field, message = problem
        raise UsageError(f"{flag_of(field.removeprefix('models.'), MODEL_FLAGS)}: {message}")
    return choice


async def existing(client: Client, workflow_id: str) -> tuple[WorkflowHandle, WorkflowExecutionDescription]:
    handle = client.get_workflow_handle(workflow_id)
    try:
        return handle, await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise UsageError(f"no run with id {workflow_id!r}") from exc
        raise

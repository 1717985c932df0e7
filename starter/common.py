"""What every CLI command shares: errors, the console, connecting, starting or attaching to runs."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from rich.console import Console
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.providers.pricing import Unpriced, quote
from models.image import ImageOptions
from models.priority import run_priority
from models.settings import WORKFLOW_QUEUE, Settings
from models.usage import CostLimit
from starter import run_labels
from starter.waiting import WaitingNotes
from workers.connection import TemporalSetupError, connect, missing_search_attributes

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


async def labelled_start(
    client: Client, settings: Settings, pipeline: str, text: str, run: Any, job: Any, workflow_id: str, **more: Any
) -> WorkflowHandle:
    """Start a run with its pipeline's priority, its summary and details for the Temporal UI, and its search
    attributes (one warning when the server lacks them)."""
    labels = await run_labels.start_options(client, settings, pipeline, text, job, workflow_id)
    if "search_attributes" not in labels:
        stderr.print(f"[yellow]{missing_search_attributes(settings.temporal_namespace)}[/]")
    return await client.start_workflow(
        run,
        job,
        id=workflow_id,
        task_queue=WORKFLOW_QUEUE,
        priority=run_priority(pipeline, workflow_id),
        **labels,
        **more,
    )


async def start_or_attach(
    client: Client, run: Any, job: Any, workflow_id: str, settings: Settings, pipeline: str, text: str
) -> WorkflowHandle:
    """Start a run; an id that already exists is attached to (running) or read back (finished)."""
    attached["id"] = workflow_id
    try:
        handle = await labelled_start(
            client,
            settings,
            pipeline,
            text,
            run,
            job,
            workflow_id,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        stderr.print(f"run {workflow_id} · provider {settings.resolved_provider}")
        stderr.print(f"Temporal UI: {settings.workflow_ui_link(workflow_id)}")
        return handle
    except WorkflowAlreadyStartedError:
        stderr.print(f"run {workflow_id} already exists: showing its result")
        return client.get_workflow_handle_for(run, workflow_id)


async def launch(args: Any, settings: Settings, kind: str, run: Any, job: Any, text: str) -> tuple[Client, str] | None:
    """Start (or attach to) the run the user asked for; None when `--detach` printed its id.

    Without `--id` the workflow id is made from the kind, the time and a hash of `text`.
    """
    client = await connect_or_explain(settings)
    workflow_id = args.workflow_id or default_id(kind, text)
    await start_or_attach(client, run, job, workflow_id, settings, kind, text)
    if args.detach:
        print(workflow_id)
        return None
    return client, workflow_id


def add_max_cost(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-cost", type=float, default=None, metavar="USD", help="dollar budget (default ATELIER_MAX_COST_USD)"
    )


def cost_limit(
    args: Any, settings: Settings, image_options: list[ImageOptions], references: int = 0, first: tuple = ("text",)
) -> CostLimit | None:
    """The run's dollar budget from `--max-cost` (or ATELIER_MAX_COST_USD) with its per-call reservations;
    a budget that cannot cover the run's `first` calls is refused before anything starts."""
    value = args.max_cost if args.max_cost is not None else settings.max_cost_usd
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"--max-cost must be a number of US dollars, 0 or more (got {value})")
    try:
        limit = quote(settings, value, image_options, references)
    except Unpriced as exc:
        raise UsageError(str(exc)) from exc
    if (needed := sum(limit.quote(kind) for kind in first)) > value:
        raise UsageError(f"--max-cost ${value:g} does not cover the first step, which may cost up to ${needed:.4f}")
    return limit


def validated(model: type[M], **fields: Any) -> M:
    """Build a job from what the user typed; the first problem becomes a one-line usage error."""
    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        raise UsageError(f"{'.'.join(map(str, first['loc']))}: {message}") from exc


async def follow(
    client: Client, handle: WorkflowHandle, progress_line: Callable[[WorkflowHandle], Awaitable[str | None]]
) -> Any:
    """Wait for a run's result, printing its progress line (and any rate-limit wait) on stderr whenever it
    changes."""
    result = asyncio.ensure_future(handle.result())
    last = ""
    silent = WorkerSilence()
    notes = WaitingNotes(client)
    with stderr.status("waiting for the run…") as spinner:
        while not result.done():
            line = await progress_line(handle)
            silent.observe(line is not None)
            if line is not None and (waits := await notes.current()):
                line = f"{line} · {'; '.join(waits)}"
            if line is not None and line != last:
                stderr.print(f"[dim]{handle.id}[/] {line}")
                spinner.update(line)
                last = line
            await asyncio.wait([result], timeout=0.3)
    return result.result()


class WorkerSilence:
    """Says once, on stderr, when no worker has answered the progress query for a while."""

    def __init__(self, after_s: float = 6.0) -> None:
        self.after_s = after_s
        self.since: float | None = None
        self.said = False

    def observe(self, answered: bool) -> None:
        now = time.monotonic()
        if answered:
            self.since = None
            return
        self.since = self.since or now
        if not self.said and now - self.since >= self.after_s:
            stderr.print(
                "[yellow]no worker is answering: is `python -m workers` (or `python -m starter up`) running? "
                "The run waits in Temporal until one is.[/]"
            )
            self.said = True


async def launch_and_print(
    args: Any, settings: Settings, kind: str, run: Any, job: Any, text: str, printer: Any
) -> int:
    """Start (or attach to) a run and print its result with `printer` (or its id with `--detach`)."""
    if (launched := await launch(args, settings, kind, run, job, text)) is None:
        return 0
    client, workflow_id = launched
    return await printer(client, workflow_id, settings, args.out)


async def existing(client: Client, workflow_id: str) -> tuple[WorkflowHandle, WorkflowExecutionDescription]:
    handle = client.get_workflow_handle(workflow_id)
    try:
        return handle, await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise UsageError(f"no run with id {workflow_id!r}") from exc
        raise


async def bounded_query(handle: WorkflowHandle, query: Any, result_type: Any) -> Any:
    """A query's answer, or None when no worker answers within a couple of seconds."""
    try:
        return await handle.query(query, result_type=result_type, rpc_timeout=timedelta(seconds=2))
    except RPCError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # Ctrl-C arrived during the call: detach, do not swallow it
            raise asyncio.CancelledError from None
        return None

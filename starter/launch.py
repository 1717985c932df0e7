"""Starting a run from the CLI: labelled for the UI and the priority queue, or attached to when it exists."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from kit.api_keys import KeyStore
from kit.connection import missing_search_attributes
from kit.urls import Urls
from models.priority import run_priority
from models.settings import WORKFLOW_QUEUE, Settings
from starter import run_labels
from starter.common import attached, connect_or_explain, default_id, stderr
from starter.services import listening


async def labelled_start(
    client: Client, settings: Settings, pipeline: str, text: str, run: Any, job: Any, workflow_id: str, **more: Any
) -> WorkflowHandle:
    """Start a run with its pipeline's priority, its summary and details for the Temporal UI, and its search
    attributes (one warning when the server lacks them)."""
    labels = await run_labels.start_options(client, settings, pipeline, text, job, workflow_id)
    labels["memo"] |= more.pop("memo", None) or {}  # more of it: a branch's parent
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
    client: Client,
    run: Any,
    job: Any,
    workflow_id: str,
    settings: Settings,
    pipeline: str,
    text: str,
    memo: dict[str, Any] | None = None,
) -> WorkflowHandle:
    """Start a run (`memo`: more of its memo); an id that already exists is attached to (running) or read back
    (finished)."""
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
            memo=memo,
        )
        stderr.print(f"run {workflow_id} · provider {settings.resolved_provider}")
        stderr.print(f"Temporal UI: {Urls(settings).temporal_ui(workflow_id)}")
        print_studio_link(settings, pipeline, workflow_id)
        return handle
    except WorkflowAlreadyStartedError:
        stderr.print(f"run {workflow_id} already exists: showing its result")
        return client.get_workflow_handle_for(run, workflow_id)


def print_studio_link(settings: Settings, pipeline: str, workflow_id: str) -> None:
    """Where to watch the run in Atelier Studio, when the API that serves it is up and keyless (with keys, a
    run the CLI starts belongs to no tenant: only the keyless studio shows it)."""
    if not KeyStore(settings).configured() and listening(f"{settings.api_host}:{settings.api_port}", timeout=0.3):
        stderr.print(f"Studio: {Urls(settings).studio_page(pipeline, workflow_id)}")


async def launch(
    args: Any, settings: Settings, kind: str, run: Any, job: Any, text: str, memo: dict[str, Any] | None = None
) -> tuple[Client, str] | None:
    """Start (or attach to) the run the user asked for; None when `--detach` printed its id.

    Without `--id` the workflow id is made from the kind, the time and a hash of `text`.
    """
    client = await connect_or_explain(settings)
    workflow_id = args.workflow_id or default_id(kind, text)
    await start_or_attach(client, run, job, workflow_id, settings, kind, text, memo)
    if args.detach:
        print(workflow_id)
        return None
    return client, workflow_id


async def launch_and_print(
    args: Any, settings: Settings, kind: str, run: Any, job: Any, text: str, printer: Any, memo: dict | None = None
) -> int:
    """Start (or attach to) a run and print its result with `printer` (or its id with `--detach`)."""
    if (launched := await launch(args, settings, kind, run, job, text, memo)) is None:
        return 0
    client, workflow_id = launched
    return await printer(client, workflow_id, settings, args.out)

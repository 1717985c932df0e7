"""`atelier runs`: recent runs, newest first, from Temporal's visibility (Atelier's search attributes)."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from kit.connection import has_search_attributes, missing_search_attributes
from kit.run_reading import KNOWN_STATES, state_filter, state_of
from kit.urls import Urls
from models import pipelines
from models.search_attributes import COST, PIPELINE, PIPELINES, SCORE
from models.settings import Settings
from starter.common import UsageError, bounded_query, connect_or_explain, stderr
from workflows.character import CharacterWorkflow
from workflows.conversation import ConversationWorkflow
from workflows.knowledge import KnowledgeIngestWorkflow

WORKFLOW_TYPE_OF = {  # each AtelierPipeline's workflow type, for a server without Atelier's search attributes
    **{spec.name: spec.workflow_type for spec in pipelines.PIPELINES.values()},
    "character": CharacterWorkflow.__name__,
    "conversation": ConversationWorkflow.__name__,
    "knowledge": KnowledgeIngestWorkflow.__name__,
}
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def add_parser(sub: Any) -> None:
    runs = sub.add_parser("runs", help="list recent runs (newest first) with state, cost, score and UI link")
    runs.add_argument("--pipeline", help=f"one of {', '.join(PIPELINES)} (default: all but character)")
    runs.add_argument("--state", help=f"the pipeline's state, e.g. {', '.join(KNOWN_STATES[:4])}…")
    runs.add_argument("--since", help="only runs started in this window, e.g. 30m, 1h, 2d")
    runs.add_argument("--limit", type=int, default=20, help="at most this many runs (default 20)")
    runs.add_argument("--json", action="store_true", help="one JSON list, for scripts")


def since_start(text: str, now: datetime) -> datetime:
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"--since {text!r}: use a positive number and a unit, e.g. 30m, 1h, 2d")
    return now - timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class Wanted:
    """What `runs` lists, checked before anything connects."""

    pipelines: list[str]
    state: str | None
    started_after: datetime | None


def wanted_runs(args: argparse.Namespace, now: datetime) -> Wanted:
    pipeline = args.pipeline.lower() if args.pipeline else None
    if pipeline is not None and pipeline not in PIPELINES:
        raise UsageError(f"--pipeline {args.pipeline!r}: choose one of {', '.join(PIPELINES)}")
    state = args.state.upper() if args.state else None
    if state is not None and state not in KNOWN_STATES:
        raise UsageError(f"--state {args.state!r}: choose one of {', '.join(KNOWN_STATES)}")
    if not 1 <= args.limit <= 1000:
        raise UsageError(f"--limit {args.limit}: choose 1 to 1000")
    return Wanted(
        pipelines=[pipeline] if pipeline else [p for p in PIPELINES if p != "character"],
        state=state,
        started_after=since_start(args.since, now) if args.since else None,
    )


def visibility_query(wanted: Wanted, searchable: bool) -> str:
    """The list filter; with Atelier's attributes by pipeline and state, without them by workflow type."""
    if searchable:
        parts = [f"{PIPELINE.name} IN ({', '.join(json.dumps(p) for p in wanted.pipelines)})"]
    else:
        parts = [f"WorkflowType IN ({', '.join(json.dumps(WORKFLOW_TYPE_OF[p]) for p in wanted.pipelines)})"]
    if wanted.state is not None:
        try:
            parts.append(state_filter(wanted.state, searchable))
        except ValueError as exc:
            raise UsageError(f"--state {exc}") from None
    if wanted.started_after:
        parts.append(f'StartTime > "{wanted.started_after.isoformat().replace("+00:00", "Z")}"')
    return " AND ".join(parts)


def pipeline_of(run: WorkflowExecution) -> str:
    named = run.typed_search_attributes.get(PIPELINE)
    return named or next((p for p, t in WORKFLOW_TYPE_OF.items() if t == run.workflow_type), run.workflow_type)


async def progress_of(client: Client, run: WorkflowExecution) -> str | None:
    """A running run's first line of current details (what the UI shows), if a worker answers."""
    metadata = await bounded_query(
        client.get_workflow_handle(run.id, run_id=run.run_id), "__temporal_workflow_metadata", WorkflowMetadata
    )
    line = metadata.current_details.splitlines()[0] if metadata and metadata.current_details else None
    return line.replace("**", "") if line else None


async def row(client: Client, run: WorkflowExecution, settings: Settings, now: datetime) -> dict[str, Any]:
    ended = run.close_time or now
    score = run.typed_search_attributes.get(SCORE)
    item: dict[str, Any] = {
        "workflow_id": run.id,
        "pipeline": pipeline_of(run),
        "state": state_of(run),
        "started": run.start_time.isoformat(),
        "duration_s": round((ended - run.start_time).total_seconds(), 1),
        "cost_usd": run.typed_search_attributes.get(COST),
        "score": score,
        "progress": None,
        "ui": Urls(settings).temporal_ui(run.id),
    }
    if run.status == WorkflowExecutionStatus.RUNNING:
        item["progress"] = await progress_of(client, run)
    return item


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def print_table(rows: list[dict[str, Any]]) -> None:
    table = Table(box=None, pad_edge=False)
    for name in ("id", "pipeline", "state", "started", "took", "cost", "score / progress", "Temporal UI"):
        table.add_column(name, no_wrap=name in {"id", "Temporal UI"})
    for r in rows:
        score = f"{r['score']:g}" if r["score"] is not None else (r["progress"] or "")
        cost = f"${r['cost_usd']:.4f}" if r["cost_usd"] is not None else ""
        started = datetime.fromisoformat(r["started"]).astimezone().strftime("%Y-%m-%d %H:%M")
        table.add_row(
            r["workflow_id"], r["pipeline"], r["state"], started, duration(r["duration_s"]), cost, score, r["ui"]
        )
    Console(soft_wrap=True, highlight=False, width=400).print(table)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    wanted = wanted_runs(args, now)  # bad input fails before connecting
    client = await connect_or_explain(settings)
    searchable = await has_search_attributes(client, settings.temporal_namespace)
    if not searchable:
        stderr.print(f"[yellow]{missing_search_attributes(settings.temporal_namespace)}[/]")
    query = visibility_query(wanted, searchable)
    found = [r async for r in client.list_workflows(query, limit=args.limit)]
    found.sort(key=lambda r: r.start_time, reverse=True)
    rows = list(await asyncio.gather(*(row(client, r, settings, now) for r in found[: args.limit])))
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print_table(rows)
    else:
        stderr.print(f"no runs match ({query})")
    return 0

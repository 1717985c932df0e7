"""`python -m starter` / `atelier`: server, up, down, image, world, meme (each with `--vary`: a matrix),
branch (an image run from another's iteration), experiment, chat, kb, runs, models, status, result, cancel."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from importlib import import_module
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError
from pydantic_settings import SettingsError
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from kit.db import DatabaseAhead
from kit.urls import Urls
from models import pipelines
from models.experiment import EXPERIMENT_TYPE
from models.settings import Settings, invalid_settings
from starter import branch_cmd, chat_cmd, db_cmd, experiment_cmd, kb_cmd, models_cmd, runs_cmd, serve_cmd, services
from starter.common import Parser, Pipeline, UsageError, attached, connect_or_explain, existing, stderr
from starter.waiting import waiting
from workflows.conversation import ConversationWorkflow

STARTS = {name: import_module(spec.command) for name, spec in pipelines.PIPELINES.items()}  # image, world, meme
PIPELINES: dict[str, Pipeline] = {  # by workflow type: what `status` and `result` do with a run of it
    **{spec.workflow_type: STARTS[name].PIPELINE for name, spec in pipelines.PIPELINES.items()},
    EXPERIMENT_TYPE: experiment_cmd.PIPELINE,
    ConversationWorkflow.__name__: chat_cmd.PIPELINE,
}


def build_parser() -> Parser:
    parser = Parser(prog="atelier", description="Durable AI content pipelines on Temporal.")
    parser.add_argument(
        "--profile", help="the Temporal profile to connect with (TEMPORAL_PROFILE; profiles as the temporal CLI)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    sub.add_parser("server", help="run the embedded Temporal dev server in the foreground")
    sub.add_parser("up", help="start the dev server and a worker in the background")
    sub.add_parser("down", help="stop what `up` started")
    sub.add_parser("codec-server", help="decrypt payloads for the Temporal UI (needs ATELIER_CODEC_KEY)")
    for name, command in STARTS.items():
        command.add_parser(sub)
        experiment_cmd.add_matrix_flags(sub.choices[name])  # `--vary`: an experiment of the one job
    branch_cmd.add_parser(sub)
    experiment_cmd.add_parser(sub)
    chat_cmd.add_parser(sub)
    kb_cmd.add_parser(sub)
    runs_cmd.add_parser(sub)
    models_cmd.add_parser(sub)
    serve_cmd.add_parsers(sub)
    db_cmd.add_parser(sub)
    for name, text in (
        ("status", "show a run's status"),
        ("result", "wait for and print a run's result"),
        ("cancel", "cancel a run"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("workflow_id")
        if name == "result":
            cmd.add_argument("--out", type=Path, default=None)
    return parser


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_or_explain(settings)
    handle, info = await existing(client, args.workflow_id)
    running = info.status == WorkflowExecutionStatus.RUNNING
    payload: dict[str, Any] = {
        "workflow_id": info.id,
        "workflow_type": info.workflow_type,
        "status": info.status.name.lower() if info.status else "unknown",
        "started": info.start_time.isoformat(),
        "closed": info.close_time.isoformat() if info.close_time else None,
        "ui": Urls(settings).temporal_ui(info.id),
    }
    if pipeline := PIPELINES.get(info.workflow_type):
        payload["state"] = await pipeline.state(handle)
        if payload["state"] is None and running:
            payload["note"] = "no worker answered the state query: is `python -m workers` running?"
    if running:
        payload["waiting"] = await waiting(client)
    print(json.dumps(payload, indent=2))
    return 0


async def cmd_result(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_or_explain(settings)
    handle, info = await existing(client, args.workflow_id)
    if pipeline := PIPELINES.get(info.workflow_type):
        return await pipeline.result(client, args.workflow_id, settings, args.out)
    print(json.dumps(await handle.result(), indent=2, default=str))
    return 0


async def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    handle, info = await existing(await connect_or_explain(settings), args.workflow_id)
    if info.status != WorkflowExecutionStatus.RUNNING:
        status = info.status.name.lower() if info.status else "unknown"
        raise UsageError(f"run {args.workflow_id!r} is not running ({status})")
    await handle.cancel()
    print(json.dumps({"workflow_id": args.workflow_id, "cancel_requested": True}))
    return 0


COMMANDS = {
    **{name: command.run for name, command in STARTS.items()},
    "branch": branch_cmd.run,
    "experiment": experiment_cmd.run,
    "chat": chat_cmd.run,
    "kb": kb_cmd.run,
    "runs": runs_cmd.run,
    "models": models_cmd.run,
    "serve": serve_cmd.run_serve,
    "api-key": serve_cmd.run_api_key,
    "db": db_cmd.run,
    "status": cmd_status,
    "result": cmd_result,
    "cancel": cmd_cancel,
}


def _root_cause(exc: BaseException) -> BaseException:
    """The error to show: our own ApplicationError (it names the step), else the deepest cause."""
    while getattr(exc, "cause", None) is not None and not isinstance(exc, ApplicationError):
        exc = exc.cause  # type: ignore[attr-defined]
    return exc


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        settings = Settings(TEMPORAL_PROFILE=args.profile) if args.profile else Settings()
        if args.command == "server":
            return services.run_server(settings)
        if args.command == "codec-server":
            from starter import codec_server

            return codec_server.serve(settings)
        if args.command in {"up", "down"}:
            if args.command == "up":
                db_cmd.prepare(settings)  # migrated (or refused) before anything starts
            for note in (services.up if args.command == "up" else services.down)(settings):
                stderr.print(note)
            if args.command == "up":
                stderr.print(f"Temporal UI: {settings.temporal_ui_url}")
            return 0
        if getattr(args, "vary", None):  # a create with `--vary`: the experiment of its matrix
            return asyncio.run(experiment_cmd.run_matrix(args.command, args, settings))
        return asyncio.run(COMMANDS[args.command](args, settings))
    except (UsageError, DatabaseAhead) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"error: {invalid_settings(exc)}", file=sys.stderr)
        return 2
    except SettingsError as exc:  # a value that should be JSON is not
        field = re.search(r'field "(\w+)"', str(exc))
        info = Settings.model_fields.get(field.group(1)) if field else None
        name = str(info.validation_alias) if info and info.validation_alias else "a setting"
        print(f"error: invalid configuration: {name}: not valid JSON", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if getattr(args, "command", None) == "chat" and attached.get("id"):
            print(f"detached: continue the conversation with `atelier chat --id {attached['id']}`", file=sys.stderr)
            return 130
        how = (
            "`atelier result <id>`"
            if not getattr(args, "workflow_id", None)
            else f"`atelier result {args.workflow_id}`"
        )
        print(f"detached: the run goes on in Temporal; re-attach with {how}", file=sys.stderr)
        return 130
    except WorkflowFailureError as exc:
        print(f"error: run failed: {_root_cause(exc)}", file=sys.stderr)
        return 1
    except (services.ServiceError, RuntimeError, RPCError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def entry() -> NoReturn:
    """Process entry (`python -m starter`, `atelier`): exit without interpreter finalization.

    Temporal's core threads may still deliver a callback while Python finalizes, which can abort
    the process after its work is done; flushing and leaving with os._exit avoids that race.
    """
    code = main()
    from kit import tracing

    tracing.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

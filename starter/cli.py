"""`python -m starter` / `atelier`: server, up, down, image, status, result, cancel."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError
from rich.console import Console
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.references import BadReference, check_url, is_url, read_local
from activities.storage import make_store
from models.image import ImageJob, ImageJobResult, ImageOptions, LoopState
from models.settings import WORKFLOW_QUEUE, Settings
from starter import services
from starter.results import image_result_json
from workers.connection import connect
from workflows.image_refinement import ImageRefinementWorkflow

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class UsageError(Exception):
    """Bad input: reported as one line on stderr with exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> Parser:
    parser = Parser(prog="atelier", description="Durable AI content pipelines on Temporal.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    sub.add_parser("server", help="run the embedded Temporal dev server in the foreground")
    sub.add_parser("up", help="start the dev server and a worker in the background")
    sub.add_parser("down", help="stop what `up` started")

    image = sub.add_parser("image", help="run the prompt → image → evaluate → refine loop")
    image.add_argument("prompt")
    image.add_argument("--refs", nargs="+", default=[], metavar="PATH_OR_URL")
    image.add_argument("--quality", choices=["auto", "low", "medium", "high"], default="high")
    image.add_argument("--size", choices=["auto", "1024x1024", "1024x1536", "1536x1024"], default="1024x1024")
    image.add_argument("--background", choices=["auto", "opaque", "transparent"], default=None)
    image.add_argument("--format", choices=["png", "jpeg", "webp"], default="png")
    image.add_argument("--max-iterations", type=int, default=4)
    image.add_argument("--threshold", type=int, default=85)
    image.add_argument(
        "--out", type=Path, default=None, help="folder for the images (default .atelier/out/<id>)"
    )
    image.add_argument("--id", dest="workflow_id", default=None, help="workflow id (attach if it exists)")
    image.add_argument("--detach", action="store_true", help="start the run and print its workflow id")

    for name, text in (("status", "show a run's status"), ("result", "wait for and print a run's result"),
                       ("cancel", "cancel a run")):  # fmt: skip
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("workflow_id")
        if name == "result":
            cmd.add_argument("--out", type=Path, default=None)
    return parser


def image_job(args: argparse.Namespace, settings: Settings) -> ImageJob:
    """Validate everything the user typed before any workflow starts."""
    if not args.prompt.strip():
        raise UsageError("the prompt is empty")
    if not 1 <= args.max_iterations <= 20:
        raise UsageError("--max-iterations must be between 1 and 20")
    if not 0 <= args.threshold <= 100:
        raise UsageError("--threshold must be between 0 and 100")
    background = args.background or ("transparent" if args.format in {"png", "webp"} else "opaque")
    if background == "transparent" and args.format == "jpeg":
        raise UsageError("--background transparent needs --format png or webp")
    references = []
    for ref in args.refs:
        try:
            if is_url(ref):
                check_url(ref, settings.allow_private_urls)
                references.append(ref)
            else:
                read_local(ref)
                references.append(str(Path(ref).expanduser().resolve()))
        except BadReference as exc:
            raise UsageError(str(exc)) from exc
    options = ImageOptions(quality=args.quality, size=args.size, background=background, format=args.format)
    try:
        return ImageJob(
            prompt=args.prompt.strip(),
            references=references,
            options=options,
            max_iterations=args.max_iterations,
            threshold=args.threshold,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def default_id(prompt: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"image-{stamp}-{hashlib.sha256(prompt.encode()).hexdigest()[:6]}"


async def _connect(settings: Settings) -> Client:
    try:
        return await connect(settings)
    except RuntimeError as exc:
        raise RuntimeError(
            f"cannot reach Temporal at {settings.temporal_address} (start it with `make demo` or "
            f"`python -m starter server`): {exc}"
        ) from exc


async def query_state(handle: WorkflowHandle) -> LoopState | None:
    """The loop's state, or None when no worker answers within a couple of seconds."""
    try:
        return await handle.query(
            ImageRefinementWorkflow.state, result_type=LoopState | None, rpc_timeout=timedelta(seconds=2)
        )
    except RPCError:
        return None


def _describe_state(state: LoopState) -> str:
    scores = ", ".join(map(str, state.scores)) or "-"
    return f"iteration {state.iteration}/{state.max_iterations} · {state.phase.value} · scores [{scores}]"


async def follow(handle: WorkflowHandle) -> Any:
    """Wait for the result, showing the loop's progress on stderr."""
    result = asyncio.ensure_future(handle.result())
    last = ""
    with stderr.status("waiting for the run…") as status:
        while not result.done():
            state = await query_state(handle)
            if state is not None and (line := _describe_state(state)) != last:
                stderr.print(f"[dim]{handle.id}[/] {line}")
                status.update(line)
                last = line
            await asyncio.wait([result], timeout=0.5)
    return result.result()


async def _print_image_result(handle: WorkflowHandle, settings: Settings, out: Path | None) -> int:
    result: ImageJobResult = await follow(handle)
    payload = await image_result_json(
        result, make_store(settings), out or settings.data_dir / "out" / handle.id
    )
    print(json.dumps(payload, indent=2))
    stderr.print(f"best image: {payload['best_image_url']} (score {payload['final_score']})")
    stderr.print(f"Temporal UI: {settings.workflow_ui_link(handle.id)}")
    return 0


async def cmd_image(args: argparse.Namespace, settings: Settings) -> int:
    job = image_job(args, settings)
    client = await _connect(settings)
    workflow_id = args.workflow_id or default_id(job.prompt)
    try:
        handle = await client.start_workflow(
            ImageRefinementWorkflow.run,
            job,
            id=workflow_id,
            task_queue=WORKFLOW_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        stderr.print(f"run {workflow_id} · provider {settings.resolved_provider}")
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle_for(ImageRefinementWorkflow.run, workflow_id)
        stderr.print(f"run {workflow_id} already exists: showing its result")
    if args.detach:
        print(workflow_id)
        return 0
    return await _print_image_result(handle, settings, args.out)


async def _existing(client: Client, workflow_id: str) -> tuple[WorkflowHandle, Any]:
    handle = client.get_workflow_handle(workflow_id)
    try:
        return handle, await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise UsageError(f"no run with id {workflow_id!r}") from exc
        raise


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    handle, info = await _existing(await _connect(settings), args.workflow_id)
    payload: dict[str, Any] = {
        "workflow_id": info.id,
        "workflow_type": info.workflow_type,
        "status": info.status.name.lower() if info.status else "unknown",
        "started": info.start_time.isoformat(),
        "closed": info.close_time.isoformat() if info.close_time else None,
        "ui": settings.workflow_ui_link(info.id),
    }
    if info.workflow_type == ImageRefinementWorkflow.__name__:
        state = await query_state(handle)
        payload["state"] = state.model_dump(mode="json") if state else None
        if state is None and info.status == WorkflowExecutionStatus.RUNNING:
            payload["note"] = "no worker answered the state query: is `python -m workers` running?"
    print(json.dumps(payload, indent=2))
    return 0


async def cmd_result(args: argparse.Namespace, settings: Settings) -> int:
    client = await _connect(settings)
    handle, info = await _existing(client, args.workflow_id)
    if info.workflow_type == ImageRefinementWorkflow.__name__:
        typed = client.get_workflow_handle_for(ImageRefinementWorkflow.run, handle.id)
        return await _print_image_result(typed, settings, args.out)
    print(json.dumps(await handle.result(), indent=2, default=str))
    return 0


async def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    handle, info = await _existing(await _connect(settings), args.workflow_id)
    if info.status != WorkflowExecutionStatus.RUNNING:
        raise UsageError(f"run {args.workflow_id!r} is not running ({info.status.name.lower()})")
    await handle.cancel()
    print(json.dumps({"workflow_id": args.workflow_id, "cancel_requested": True}))
    return 0


COMMANDS = {"image": cmd_image, "status": cmd_status, "result": cmd_result, "cancel": cmd_cancel}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        settings = Settings()
        if args.command == "server":
            return services.run_server(settings)
        if args.command in {"up", "down"}:
            for note in (services.up if args.command == "up" else services.down)(settings):
                stderr.print(note)
            if args.command == "up":
                stderr.print(f"Temporal UI: {settings.temporal_ui_url}")
            return 0
        return asyncio.run(COMMANDS[args.command](args, settings))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(
            f"error: invalid configuration: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted: the run goes on in Temporal; `atelier result ID` attaches again", file=sys.stderr)
        return 130
    except WorkflowFailureError as exc:
        cause = exc.cause
        while getattr(cause, "cause", None) is not None:
            cause = cause.cause
        print(f"error: run failed: {cause or exc}", file=sys.stderr)
        return 1
    except (services.ServiceError, RuntimeError, RPCError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

"""`atelier meme`: topic → format → text → verify → score → refine → image → overlay → upload."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from temporalio.client import Client, WorkflowHandle

from kit.files import write_atomic
from kit.storage import ArtifactStore, load, make_store
from models.meme import FORMAT_NAMES, SCENE_OPTIONS, MemeJob, MemeMetrics, MemeResult, MemeStatus
from models.settings import Settings
from starter.common import Pipeline, add_model_flags, bounded_query, chosen_models, stderr, validated
from starter.follow import follow
from starter.launch import launch_and_print
from starter.max_cost import add_max_cost, cost_limit
from workflows.meme import MemeWorkflow


def add_parser(sub: argparse._SubParsersAction) -> None:
    meme = sub.add_parser("meme", help="make a meme about a topic")
    meme.add_argument("topic")
    meme.add_argument("--format", choices=["auto", *FORMAT_NAMES], default="auto")
    meme.add_argument("--style", default="", help="e.g. 'relatable', 'corporate', 'wholesome'")
    meme.add_argument("--max-refinements", type=int, default=2)
    meme.add_argument("--target-score", type=float, default=0.7, help="0-1: stop refining at this score")
    add_max_cost(meme)
    add_model_flags(meme)
    meme.add_argument("--no-cache", action="store_true", help="make a new meme even if an identical one exists")
    meme.add_argument("--out", type=Path, default=None, help="folder for the meme (default .atelier/out/<id>)")
    meme.add_argument("--id", dest="workflow_id", default=None, help="workflow id (attach if it exists)")
    meme.add_argument("--detach", action="store_true", help="start the run and print its workflow id")


# where each field of the job comes from (the topic is the positional argument)
MEME_FLAGS = {
    "topic": "topic",
    "format": "--format",
    "style": "--style",
    "max_refinements": "--max-refinements",
    "target_score": "--target-score",
    "blocked_words": "ATELIER_BLOCKED_WORDS",
    "cost": "--max-cost",
}


def meme_job(args: argparse.Namespace, settings: Settings) -> MemeJob:
    """The job, by its own rules, then its dollar budget."""
    job = validated(
        MemeJob,
        MEME_FLAGS,
        topic=args.topic,
        format=args.format,
        style=args.style.strip(),
        max_refinements=args.max_refinements,
        target_score=args.target_score,
        use_cache=not args.no_cache,
        blocked_words=settings.blocked_words,
        models=chosen_models(args, settings),
    )
    return job.model_copy(update={"cost": cost_limit(args, settings, [SCENE_OPTIONS], models=job.models)})


async def meme_status(handle: WorkflowHandle) -> MemeStatus | None:
    return await bounded_query(handle, MemeWorkflow.status, MemeStatus | None)


async def progress_line(handle: WorkflowHandle) -> str | None:
    st = await meme_status(handle)
    if st is None:
        return None
    best = f" · best {st.best_score:.2f}" if st.best_score is not None else ""
    spent = f" · ${st.spend.spent_usd:.4f} of ${st.spend.max_usd:.4f}" if st.spend else ""
    return f"{st.phase.value.lower().replace('_', ' ')} · drafts {st.drafts}{best}{spent}"


async def meme_link(store: ArtifactStore, result: MemeResult) -> str | None:
    """Where to fetch the published meme, minted now (a presigned URL on MinIO/S3, valid 7 days from now; a
    path on the local store): results keep only its key. None when the upload failed."""
    if result.upload_error is not None:
        return None
    return await store.url(result.image.key)


async def print_result(client: Client, workflow_id: str, settings: Settings, out: Path | None) -> int:
    handle = client.get_workflow_handle_for(MemeWorkflow.run, workflow_id)
    result: MemeResult = await follow(client, handle, progress_line)
    out_dir = out or settings.data_dir / "out" / workflow_id
    path = (out_dir / "meme.png").resolve()
    store = make_store(settings)
    write_atomic(path, await load(store, result.image))
    payload = result.model_dump(mode="json") | {"url": await meme_link(store, result), "file": str(path)}
    write_atomic(out_dir / "result.json", json.dumps(payload, indent=2).encode())
    print(json.dumps(payload, indent=2))
    timeline = " → ".join(f"{phase.lower().replace('_', ' ')} {ms} ms" for phase, ms in result.metrics.phase_ms.items())
    stderr.print(f"phases: {timeline}")
    stderr.print(f"cache: {result.cache}")
    if result.degraded:
        stderr.print(f"[yellow]degraded:[/] {result.degraded}")
    if result.upload_error:
        stderr.print(f"[yellow]upload failed:[/] {result.upload_error} (the meme is kept at the path below)")
    stderr.print(f"meme: {path} (score {result.score:.2f}, {result.format.value})")
    stderr.print(f"usage: {result.usage.summary()}")
    return 0


async def run(args: argparse.Namespace, settings: Settings) -> int:
    job = meme_job(args, settings)
    return await launch_and_print(args, settings, "meme", MemeWorkflow.run, job, job.topic, print_result)


async def _status_json(handle: WorkflowHandle) -> dict | None:
    st = await meme_status(handle)
    if st is None:
        return None
    metrics = await bounded_query(handle, MemeWorkflow.metrics, MemeMetrics | None)
    return st.model_dump(mode="json") | {"metrics": metrics.model_dump(mode="json") if metrics else None}


PIPELINE = Pipeline(state=_status_json, result=print_result)

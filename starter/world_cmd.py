"""`atelier world`: a whole world from one prompt, with live progress bars."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.client import Client, WorkflowHandle

from kit.storage import ArtifactStore, LocalStore, load, make_store
from kit.urls import Urls
from models.artifacts import ArtifactRef
from models.settings import Settings
from models.world import Budget, PhaseState, WorldJob, WorldManifest, WorldResult, WorldStatus, picture_options
from starter.common import Pipeline, add_model_flags, bounded_query, chosen_models, stderr, validated
from starter.launch import launch
from starter.max_cost import add_max_cost, cost_limit
from starter.waiting import WaitingNotes
from workflows.world import WorldWorkflow

MARK = {PhaseState.PENDING: "·", PhaseState.IN_PROGRESS: "…", PhaseState.COMPLETED: "✓", PhaseState.FAILED: "✗"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    world = sub.add_parser("world", help="generate a world: description, characters, posts, images")
    world.add_argument("prompt")
    world.add_argument("--characters", type=int, default=5)
    world.add_argument("--posts", type=int, default=4, help="at most this many posts per character")
    world.add_argument("--no-images", dest="images", action="store_false")
    world.add_argument("--max-llm-calls", type=int, default=Budget().llm_calls)
    world.add_argument("--max-image-calls", type=int, default=Budget().image_calls)
    add_max_cost(world)
    add_model_flags(world)
    world.add_argument("--parallel", type=int, default=10, help="characters generated at the same time")
    world.add_argument("--out", type=Path, default=None, help="folder for the files (default .atelier/out/<id>)")
    world.add_argument("--id", dest="workflow_id", default=None, help="world id (attach if it exists)")
    world.add_argument("--detach", action="store_true", help="start the world and print its id")


# where each field of the job comes from (the prompt is the positional argument)
WORLD_FLAGS = {
    "prompt": "prompt",
    "characters": "--characters",
    "posts_per_character": "--posts",
    "images": "--no-images",
    "budget.llm_calls": "--max-llm-calls",
    "budget.image_calls": "--max-image-calls",
    "budget.cost": "--max-cost",
    "max_parallel_characters": "--parallel",
}


def world_job(args: argparse.Namespace, settings: Settings) -> WorldJob:
    """The job, by its own rules, then its dollar budget (priced for the images it will make)."""
    job = validated(
        WorldJob,
        WORLD_FLAGS,
        prompt=args.prompt,
        characters=args.characters,
        posts_per_character=args.posts,
        images=args.images,
        budget={"llm_calls": args.max_llm_calls, "image_calls": args.max_image_calls},
        max_parallel_characters=args.parallel,
        models=chosen_models(args, settings),
    )
    cost = cost_limit(args, settings, picture_options(job.images), models=job.models)
    return job.model_copy(update={"budget": job.budget.model_copy(update={"cost": cost})})


async def world_status(handle: WorkflowHandle) -> WorldStatus | None:
    return await bounded_query(handle, WorldWorkflow.status, WorldStatus | None)


def _bars(st: WorldStatus, requested: int) -> list[tuple[str, int, int]]:
    ph = st.phases
    images = " ".join(f"{name.split('_')[0]}{MARK[ph[name]]}" for name in ("world_images", "avatars", "post_images"))
    return [
        (
            f"world {MARK[ph['world_description']]} {st.world_name or ''}",
            int(ph["world_description"] == "COMPLETED"),
            1,
        ),
        (f"characters {MARK[ph['characters']]}", st.characters.planned, max(requested, st.characters.planned)),
        (f"profiles {MARK[ph['character_details']]}", st.characters.created, st.characters.planned),
        (f"posts {MARK[ph['posts']]}", st.posts.created, st.posts.planned),
        (f"images ({images})", st.images.created, st.images.planned),
    ]


async def follow(client: Client, handle: WorkflowHandle, requested: int) -> WorldResult:
    """Live bars, one per phase, until the world is done."""
    result = asyncio.ensure_future(handle.result())
    columns = (TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    notes = WaitingNotes(client)
    with Progress(*columns, console=stderr, transient=False) as progress:
        tasks: list[Any] = []
        last = ""
        waits_row = progress.add_task("", total=None, visible=False)

        def show(st: WorldStatus, waits: list[str]) -> None:
            nonlocal tasks, last
            bars = _bars(st, requested)
            if not tasks:
                tasks = [progress.add_task(name, total=max(total, 1)) for name, _, total in bars]
            for task, (name, done, total) in zip(tasks, bars, strict=True):
                progress.update(task, description=name, completed=done, total=max(total, 1))
            progress.update(waits_row, description="; ".join(waits), visible=bool(waits))
            line = " | ".join(f"{n} {d}/{t}" for n, d, t in bars) + "".join(f" | {w}" for w in waits)
            if not stderr.is_terminal and line != last:
                stderr.print(line)
                last = line

        while not result.done():
            if (st := await world_status(handle)) is not None:
                show(st, await notes.current())
            await asyncio.wait([result], timeout=0.5)
        if not result.exception():
            show(result.result().status, [])
    return result.result()


async def materialize(result: WorldResult, store: ArtifactStore, out_dir: Path) -> WorldManifest | None:
    """Copy the world's files out of the artifact store, keeping their relative layout (None: the world
    has no manifest, because storage kept failing)."""
    if result.manifest is None:
        failed = next((f.error for f in result.status.failures if f.step == "manifest"), "unknown error")
        stderr.print(f"[yellow]the world's manifest could not be written: {failed}[/]")
        return None
    manifest = WorldManifest.model_validate_json(await load(store, result.manifest))
    refs: list[ArtifactRef | None] = [manifest.world, manifest.background, manifest.icon, result.gallery]
    for character in manifest.characters:
        refs += [character.profile, character.avatar]
        for post in character.posts:
            refs += [post.post, post.image]
    prefix = f"worlds/{result.world_id}/"
    folder, outside = LocalStore(out_dir), []  # contained as the local store contains its keys
    for ref in [r for r in refs if r is not None] + [result.manifest]:
        try:
            await folder.put(ref.key.removeprefix(prefix), await load(store, ref), ref.content_type)
        except ValueError:  # a key with `..` (or absolute): it would land outside the folder
            outside.append(ref.key)
    if outside:
        names = escape(", ".join(outside[:3]) + (", ..." if len(outside) > 3 else ""))
        files = f"{len(outside)} file{'s' if len(outside) > 1 else ''}"
        stderr.print(f"[yellow]skipped {files} whose keys lead outside {escape(str(out_dir))}: {names}[/]")
    return manifest


async def _finished(client: Client, workflow_id: str, settings: Settings, out: Path | None) -> tuple:
    handle = client.get_workflow_handle_for(WorldWorkflow.run, workflow_id)
    st = await world_status(handle)
    result = await follow(client, handle, st.characters.planned if st else 0)
    out_dir = (out or settings.data_dir / "out" / workflow_id).resolve()
    manifest = await materialize(result, make_store(settings), out_dir)
    return result, manifest, out_dir


async def print_manifest(client: Client, workflow_id: str, settings: Settings, out: Path | None) -> int:
    result, manifest, out_dir = await _finished(client, workflow_id, settings, out)
    print((manifest or result.status).model_dump_json(indent=2))
    if manifest:
        stderr.print(f"gallery: {out_dir / 'index.html'}")
    return 0


async def run(args: argparse.Namespace, settings: Settings) -> int:
    job = world_job(args, settings)
    if (launched := await launch(args, settings, "world", WorldWorkflow.run, job, job.prompt)) is None:
        return 0
    client, workflow_id = launched
    result, manifest, out_dir = await _finished(client, workflow_id, settings, args.out)
    st = result.status
    summary = {
        "workflow_id": workflow_id,
        "status": result.state.value,
        "world_name": st.world_name,
        "characters": st.characters.model_dump(),
        "posts": st.posts.model_dump(),
        "images": st.images.model_dump(),
        "calls": st.calls.model_dump(),
        "usage": st.usage.model_dump(mode="json"),
        "budget_exhausted": st.budget_exhausted,
        "spend": st.spend.model_dump(mode="json") if st.spend else None,
        "duplicates_regenerated": st.duplicates_regenerated,
        "consistency": st.consistency,
        "failures": [f.model_dump() for f in st.failures],
        "manifest": str(out_dir / "manifest.json") if manifest else None,
        "gallery": str(out_dir / "index.html") if manifest else None,
        "ui": Urls(settings).temporal_ui(workflow_id),
    }
    print(json.dumps(summary, indent=2))
    if manifest:
        stderr.print(f"gallery: {out_dir / 'index.html'}")
    stderr.print(f"usage: {st.usage.summary()}")
    return 0


async def _status_json(handle: WorkflowHandle) -> dict | None:
    st = await world_status(handle)
    return st.model_dump(mode="json") if st else None


PIPELINE = Pipeline(state=_status_json, result=print_manifest)

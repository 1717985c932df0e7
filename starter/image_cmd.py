"""`atelier image`: the prompt → image → evaluate → refine loop from the command line."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from temporalio.client import Client, WorkflowHandle

from kit.references import BadReference, ReferenceImage, check_url, is_url, read_local
from kit.storage import ArtifactStore, make_ref, make_store
from kit.urls import Urls
from models.artifacts import ArtifactRef, reference_key
from models.image import ImageJob, ImageJobResult, LoopState
from models.settings import Settings
from starter.common import Pipeline, UsageError, add_model_flags, bounded_query, chosen_models, stderr, validated
from starter.follow import follow
from starter.launch import launch_and_print, print_studio_link
from starter.max_cost import add_max_cost, cost_limit
from starter.results import image_result_json
from workflows.image_refinement import ImageRefinementWorkflow


def add_parser(sub: argparse._SubParsersAction) -> None:
    image = sub.add_parser("image", help="run the prompt → image → evaluate → refine loop")
    image.add_argument("prompt")
    image.add_argument(
        "--refs", nargs="+", default=[], metavar="PATH_OR_URL", help="local files are uploaded to the artifact store"
    )
    image.add_argument("--quality", choices=["auto", "low", "medium", "high"], default="high")
    image.add_argument("--size", choices=["auto", "1024x1024", "1024x1536", "1536x1024"], default="1024x1024")
    image.add_argument("--background", choices=["auto", "opaque", "transparent"], default=None)
    image.add_argument("--format", choices=["png", "jpeg", "webp"], default="png")
    image.add_argument("--max-iterations", type=int, default=4)
    image.add_argument("--threshold", type=int, default=85)
    image.add_argument(
        "--technical-weight", type=float, default=0.25, help="share of the scoring queue's technical score (0-1)"
    )
    add_max_cost(image)
    add_model_flags(image)
    image.add_argument("--out", type=Path, default=None, help="folder for the images (default .atelier/out/<id>)")
    image.add_argument("--id", dest="workflow_id", default=None, help="workflow id (attach if it exists)")
    image.add_argument("--detach", action="store_true", help="start the run and print its workflow id")


Upload = tuple[ArtifactRef, bytes]


def local_reference(path: str) -> Upload:
    """A local reference image, read and verified here, and the artifact reference it is uploaded as:
    content-addressed, so the same picture is one artifact however often it is sent."""
    image: ReferenceImage = read_local(path)
    sha256 = hashlib.sha256(image.data).hexdigest()
    return make_ref(reference_key(sha256, image.extension), image.data, image.content_type), image.data


async def upload(store: ArtifactStore, uploads: list[Upload]) -> None:
    """Put each local reference in the artifact store the workers read (idempotent: same bytes, same key)."""
    for ref, data in uploads:
        if not await store.exists(ref.key):
            await store.put(ref.key, data, ref.content_type)


# where each field of the job comes from on the command line (the prompt is the positional argument)
IMAGE_FLAGS = {
    "prompt": "prompt",
    "references": "--refs",
    "options": "--background",  # the job's rule on the options: a transparent background needs png or webp
    "options.quality": "--quality",
    "options.size": "--size",
    "options.background": "--background",
    "options.format": "--format",
    "max_iterations": "--max-iterations",
    "threshold": "--threshold",
    "technical_weight": "--technical-weight",
    "cost": "--max-cost",
}


def image_job(args: argparse.Namespace, settings: Settings) -> tuple[ImageJob, list[Upload]]:
    """Validate everything the user typed before any workflow starts, by the job's own rules; local
    references become the uploads to make (the workflow gets their artifact references, never a path)."""
    background = args.background or ("transparent" if args.format in {"png", "webp"} else "opaque")
    typed = {
        "prompt": args.prompt,
        "options": {"quality": args.quality, "size": args.size, "background": background, "format": args.format},
        "max_iterations": args.max_iterations,
        "threshold": args.threshold,
        "technical_weight": args.technical_weight,
        "models": chosen_models(args, settings),
    }
    options = validated(ImageJob, IMAGE_FLAGS, **typed).options  # before any file is read or URL resolved
    cost = cost_limit(args, settings, [options], len(args.refs), ("image", "text"), chosen_models(args, settings))
    references: list[ArtifactRef | str] = []
    uploads: list[Upload] = []
    for ref in args.refs:
        try:
            if is_url(ref):
                check_url(ref, settings.allow_private_urls)
                references.append(ref)
            else:
                uploads.append(local_reference(ref))
                references.append(uploads[-1][0])
        except BadReference as exc:
            raise UsageError(str(exc)) from exc
    return validated(ImageJob, IMAGE_FLAGS, **typed, references=references, cost=cost), uploads


async def loop_state(handle: WorkflowHandle) -> LoopState | None:
    return await bounded_query(handle, ImageRefinementWorkflow.state, LoopState | None)


def _describe(state: LoopState) -> str:
    scores = ", ".join(map(str, state.scores)) or "-"
    spent = f"~${state.usage.estimated_cost_usd:.4f}" + (f" of ${state.spend.max_usd:.4f}" if state.spend else "")
    return f"iteration {state.iteration}/{state.max_iterations} · {state.phase.value} · scores [{scores}] · {spent}"


async def progress_line(handle: WorkflowHandle) -> str | None:
    state = await loop_state(handle)
    return _describe(state) if state is not None else None


async def print_result(client: Client, workflow_id: str, settings: Settings, out: Path | None) -> int:
    handle = client.get_workflow_handle_for(ImageRefinementWorkflow.run, workflow_id)
    result: ImageJobResult = await follow(client, handle, progress_line)
    payload = await image_result_json(result, make_store(settings), out or settings.data_dir / "out" / workflow_id)
    print(json.dumps(payload, indent=2))
    stderr.print(f"best image: {payload['best_image_url']} (score {payload['final_score']})")
    stderr.print(f"usage: {result.usage.summary()}")
    stderr.print(f"Temporal UI: {Urls(settings).temporal_ui(workflow_id)}")
    print_studio_link(settings, "image", workflow_id)
    return 0


async def run(args: argparse.Namespace, settings: Settings) -> int:
    job, uploads = image_job(args, settings)
    await upload(make_store(settings), uploads)
    return await launch_and_print(args, settings, "image", ImageRefinementWorkflow.run, job, job.prompt, print_result)


async def _state_json(handle: WorkflowHandle) -> dict | None:
    state = await loop_state(handle)
    return state.model_dump(mode="json") if state else None


PIPELINE = Pipeline(state=_state_json, result=print_result)

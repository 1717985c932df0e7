"""`atelier branch ID --from N`: a new image run that starts after iteration N of run ID, its iterations 1..N
reused, not bought again (`starter.api.branches` reads the parent and makes the job, as the API does); it is
followed and printed as `atelier image` prints a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from kit.run_reading import RunReader
from kit.storage import make_store
from models.api import BranchRequest
from models.settings import Settings
from starter import image_cmd
from starter.common import (
    MODEL_FLAGS,
    UsageError,
    add_model_flags,
    catalog_or_explain,
    chosen_models,
    connect_or_explain,
    existing,
    validated,
)
from starter.launch import launch_and_print
from starter.max_cost import add_max_cost, cost_limit
from workflows.image_refinement import ImageRefinementWorkflow

FLAGS = {
    "from_iteration": "--from",
    "feedback": "--feedback",
    "threshold": "--threshold",
    "max_iterations": "--max-iterations",
    **{f"models.{kind}": flag for kind, flag in MODEL_FLAGS.items()},
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    branch = sub.add_parser("branch", help="a new image run from iteration N of an earlier one (1..N reused)")
    branch.add_argument("parent", metavar="ID", help="the image run to branch from")
    branch.add_argument("--from", dest="from_iteration", type=int, required=True, metavar="N")
    branch.add_argument("--feedback", default=None, help="a note for the refinement after iteration N")
    branch.add_argument("--threshold", type=int, default=None, help="default: the parent's")
    branch.add_argument("--max-iterations", type=int, default=None, help="default: the parent's (at least N + 1)")
    add_max_cost(branch)
    add_model_flags(branch)
    branch.add_argument("--out", type=Path, default=None, help="folder for the images (default .atelier/out/<id>)")
    branch.add_argument("--id", dest="workflow_id", default=None, help="workflow id (attach if it exists)")
    branch.add_argument("--detach", action="store_true", help="start the run and print its workflow id")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from starter.api.branches import FIRST, BadBranch, branch_job, parent_memo, read_parent  # the API's: only here

    typed = {"from_iteration": args.from_iteration, "threshold": args.threshold, "max_iterations": args.max_iterations}
    ask = validated(BranchRequest, FLAGS, **typed, feedback=args.feedback, models=chosen_models(args, settings))
    client = await connect_or_explain(settings)
    _, described = await existing(client, args.parent)
    store = make_store(settings)
    try:
        parent = await read_parent(RunReader(client, store), described)
        if parent is None:
            raise UsageError(f"no worker answered for {args.parent!r}'s iterations: is `python -m workers` running?")
        job = await branch_job(store, catalog_or_explain(settings), parent, ask)
    except BadBranch as exc:
        raise UsageError(f"{FLAGS.get(exc.field, args.parent)}: {exc}") from None
    job = job.model_copy(
        update={"cost": cost_limit(args, settings, [job.options], len(job.references), FIRST, job.models)}
    )
    memo = parent_memo(parent.id, ask.from_iteration)
    run = ImageRefinementWorkflow.run
    return await launch_and_print(args, settings, "image", run, job, job.prompt, image_cmd.print_result, memo)

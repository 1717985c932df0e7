"""`atelier live WORLD_ID --ticks 24`: a world's life, tick by tick (`workflows.life`), followed until it ends.

The life's id is the world's (`models.life.life_id`): asking again attaches to the life that is running."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from temporalio.client import Client, WorkflowHandle

from models.life import LifeJob, LifeResult, LifeStatus, TickBudget, life_id
from models.settings import Settings
from models.workflow_interfaces import WorldWorkflow
from models.world import Budget
from starter.common import (
    Pipeline,
    UsageError,
    add_model_flags,
    bounded_query,
    chosen_models,
    connect_or_explain,
    existing,
    stderr,
    validated,
)
from starter.follow import follow
from starter.launch import launch_and_print
from starter.max_cost import add_max_cost, cost_limit
from workflows.life import LifeWorkflow

LIFE_FLAGS = {
    "world_id": "WORLD_ID",
    "ticks": "--ticks",
    "tick": "--tick",
    "active_share": "--active-share",
    "batch_size": "--batch-size",
    "budget.llm_calls": "--max-calls",
    "budget.cost": "--max-cost",
    "tick_budget.llm_calls": "--tick-calls",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    live = sub.add_parser("life", aliases=["live"], help="let a world's characters live: read, post, reply, follow")
    live.set_defaults(command="life")  # `live` is how one says it; `life` the pipeline
    live.add_argument("world_id", metavar="WORLD_ID", help="the world's run id")
    live.add_argument("--ticks", type=int, default=24, help="ticks to live (1-1000)")
    live.add_argument("--tick", default="1h", help="simulated time a tick stands for (e.g. 30m, 1h, 1d)")
    live.add_argument("--active-share", type=float, default=0.3, help="share of the cast that acts each tick")
    live.add_argument("--batch-size", type=int, default=10, help="characters decided by one model call")
    live.add_argument("--max-calls", type=int, default=20_000, help="model calls over the whole life")
    live.add_argument("--tick-calls", type=int, default=None, help="model calls per tick")
    add_max_cost(live)
    add_model_flags(live)
    live.add_argument("--id", dest="workflow_id", default=None, help="the life's id (default: from the world's)")
    live.add_argument("--detach", action="store_true", help="start the life and print its id")
    live.add_argument("--out", type=Path, default=None, help="where to write result.json")


def life_job(args: argparse.Namespace, settings: Settings) -> LifeJob:
    job = validated(
        LifeJob,
        LIFE_FLAGS,
        world_id=args.world_id,
        ticks=args.ticks,
        tick=args.tick,
        active_share=args.active_share,
        batch_size=args.batch_size,
        budget=Budget(llm_calls=max(0, args.max_calls)),
        tick_budget=TickBudget(llm_calls=args.tick_calls if args.tick_calls is None else max(0, args.tick_calls)),
        models=chosen_models(args, settings),
    )
    cost = cost_limit(args, settings, [], models=job.models)
    return job.model_copy(update={"budget": job.budget.model_copy(update={"cost": cost})})


async def life_status(handle: WorkflowHandle) -> LifeStatus | None:
    return await bounded_query(handle, LifeWorkflow.status, LifeStatus | None)


async def progress_line(handle: WorkflowHandle) -> str | None:
    st = await life_status(handle)
    if st is None:
        return None
    acted = " · ".join(f"{kind} {n}" for kind, n in st.actions.items() if n)
    note = f" · {st.note}" if st.note else ""
    return f"{st.state.value} · tick {st.tick} of {st.ticks} · {st.posts} posts · {acted}{note}"


async def print_result(client: Client, workflow_id: str, settings: Settings, out: Path | None) -> int:
    handle = client.get_workflow_handle_for(LifeWorkflow.run, workflow_id)
    result: LifeResult = await follow(client, handle, progress_line)
    payload = result.model_dump(mode="json")
    print(json.dumps(payload, indent=2))
    stderr.print(f"life {workflow_id}: {result.state.value} at tick {result.status.tick} of {result.status.ticks}")
    return 0


async def check_world(settings: Settings, world_id: str) -> None:
    """A usage error unless `world_id` is a world's run (any state: a world that failed part-way still lives)."""
    _, info = await existing(await connect_or_explain(settings), world_id)
    if info.workflow_type != WorldWorkflow.__name__:
        raise UsageError(f"{world_id!r} is no world: it is a run of {info.workflow_type}")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    job = life_job(args, settings)
    await check_world(settings, job.world_id)
    args.workflow_id = args.workflow_id or life_id(job.world_id)
    return await launch_and_print(args, settings, "life", LifeWorkflow.run, job, job.world_id, print_result)


async def _status_json(handle: WorkflowHandle) -> dict | None:
    st = await life_status(handle)
    return None if st is None else st.model_dump(mode="json")


PIPELINE = Pipeline(state=_status_json, result=print_result)

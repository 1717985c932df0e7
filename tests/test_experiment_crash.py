"""An experiment on the OpenAI-compatible test server survives worker SIGKILLs: no cell lost, none run twice, and
no paid call that had finished before a kill made again, counted at the test server: each row's prompt is its
own, so every picture and verdict request names its cell; a request made twice is checked against the cell's
history in Temporal (had that call finished before the kill?). A call in flight at a kill is made again: that is
the only repeat there may be.

`make test` runs 60 cells and one kill; by hand: `python -m tests.test_experiment_crash --cells 300 --kills 3`."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import pytest
from temporalio.client import Client

from models.experiment import ExperimentPlan, PlannedVariant
from models.settings import IMAGE_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE
from models.workflow_interfaces import ExperimentWorkflow
from tests.conftest import (
    address_of,
    atelier_env,
    eventually,
    start_dev_server,
    start_worker,
    stop_process,
    wait_for_pollers,
)
from tests.fake_openai import FakeOpenAI

QUEUES = (WORKFLOW_QUEUE, TEXT_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE)  # no scoring: technical weight 0
CALLS = {"generate_image": "picture", "evaluate_image": "verdict"}  # the paid calls of a one-iteration cell


@dataclass
class Trial:
    cells: int
    completed: int = 0
    lost: int = 0  # cells that did not complete
    started_twice: int = 0  # cells whose run was started more than once
    paid_requests: int = 0  # at the test server
    redone_after_finishing: int = 0  # calls Temporal had recorded as finished before a kill, made again
    redone_in_flight: int = 0  # calls cut off by a kill and made again
    wall_s: float = 0.0

    def line(self) -> str:
        return (
            f"{self.cells} cells: {self.completed} completed, {self.lost} lost, {self.started_twice} started twice; "
            f"{self.paid_requests} paid requests at the test server, {self.redone_after_finishing} repeated after "
            f"they had finished, {self.redone_in_flight} in flight at a kill made again; {self.wall_s:.1f} s"
        )


def plan_of(cells: int) -> ExperimentPlan:
    return ExperimentPlan(
        pipeline="image",
        workflow_type="ImageRefinementWorkflow",
        text_field="prompt",
        base={"max_iterations": 1, "threshold": 0, "technical_weight": 0, "options": {"background": "opaque"}},
        rows=[{"prompt": f"a lantern number {n} on a quay"} for n in range(cells)],
        variants=[PlannedVariant(name="a")],
        max_parallel=8,
        continue_after=100,  # the 300-cell trial continues as new twice, kills and all
    )


def requests_by_cell(fake: FakeOpenAI) -> dict[tuple[str, str], list[float]]:
    """(prompt, picture | verdict) → when the test server was asked (time.monotonic(), in order)."""
    asked: dict[tuple[str, str], list[float]] = defaultdict(list)
    for request in fake.calls("responses"):
        asked[request.body["input"][0]["content"][0]["text"], "picture"].append(request.at)
    for request in fake.calls("chat"):
        if request.body.get("response_format", {}).get("json_schema", {}).get("name") == "Evaluation":
            prompt = request.body["messages"][1]["content"][0]["text"].removeprefix("Prompt: ")
            asked[prompt, "verdict"].append(request.at)
    return asked


async def finished_calls(client: Client, child_id: str, before: float) -> set[str]:
    """The paid calls (picture, verdict) the cell's run had finished before `before` (time.time())."""
    scheduled, done = {}, set()
    for event in (await client.get_workflow_handle(child_id).fetch_history()).events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif (
            event.HasField("activity_task_completed_event_attributes")
            and event.event_time.ToDatetime(tzinfo=UTC).timestamp() < before
        ):
            kind = scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]
            done.add(CALLS.get(kind, kind))
    return done


async def finished_cells(client: Client, experiment_id: str) -> int:
    status = await client.get_workflow_handle(experiment_id).query(ExperimentWorkflow.status)
    return 0 if status is None else status.cells - status.counts["pending"] - status.counts["running"]


async def run_trial(client: Client, address: str, folder: Path, cells: int, kills: int) -> Trial:
    """The experiment under `kills` worker SIGKILLs, spread over its cells."""
    fake = FakeOpenAI()
    fake.url = fake.start()
    fake.delays.update({"responses": 0.2, "chat": 0.05})  # calls in flight when the kill lands
    env = atelier_env(folder, address, LLM_BASE_URL=fake.url, LLM_API_KEY="sk-experiment-crash")
    trial, plan, started = Trial(cells), plan_of(cells), time.monotonic()
    worker = start_worker(env, folder / "worker-0.log", QUEUES)
    try:
        await wait_for_pollers(client, WORKFLOW_QUEUE)
        handle = await client.start_workflow(
            ExperimentWorkflow.run, plan, id="crash-experiment", task_queue=WORKFLOW_QUEUE
        )
        kill_times = []
        for kill in range(1, kills + 1):
            mark = plan.cells * kill // (kills + 1)
            await eventually(lambda m=mark: _at_least(client, handle.id, m), 300, f"{mark} cells finished", every=0.2)
            kill_times.append((time.monotonic(), time.time()))  # what the server had recorded by then, finished
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            worker = start_worker(env, folder / f"worker-{kill}.log", QUEUES)
        result = await asyncio.wait_for(handle.result(), timeout=600)
    finally:
        stop_process(worker)
        fake.stop()
    trial.wall_s = time.monotonic() - started
    outcomes = result.plan.outcomes
    trial.completed = sum(o.status == "completed" for o in outcomes)
    trial.lost = plan.cells - trial.completed
    children = [run.id async for run in client.list_workflows(f'ParentWorkflowId = "{handle.id}"')]
    trial.started_twice = len(children) - len({o.child_id for o in outcomes})
    asked = requests_by_cell(fake)
    trial.paid_requests = sum(map(len, asked.values()))
    for (prompt, call), times in asked.items():
        row = next(n for n, values in enumerate(plan.rows) if values["prompt"] == prompt)
        child = next(o.child_id for o in outcomes if o.row == row)
        for asked_at, again_at in itertools.pairwise(times):  # each repeat: was it cut off by a kill between?
            kills = [wall for at, wall in kill_times if asked_at < at < again_at]
            if kills and not any([call in await finished_calls(client, child, wall) for wall in kills]):
                trial.redone_in_flight += 1
            else:
                trial.redone_after_finishing += 1
    return trial


async def _at_least(client: Client, experiment_id: str, cells: int) -> bool:
    return await finished_cells(client, experiment_id) >= cells


def check(trial: Trial, kills: int) -> None:
    assert trial.lost == 0 and trial.completed == trial.cells, trial.line()
    assert trial.started_twice == 0, trial.line()
    assert trial.redone_after_finishing == 0, trial.line()
    assert trial.paid_requests == 2 * trial.cells + trial.redone_in_flight, trial.line()  # a picture, a verdict
    assert trial.redone_in_flight <= 8 * kills, "at most the calls of the cells running at a kill are made again"


@pytest.mark.slow
async def test_an_experiment_survives_a_worker_kill_losing_and_repaying_nothing(dev_env, tmp_path):
    trial = await run_trial(dev_env.client, address_of(dev_env), tmp_path, cells=60, kills=1)
    print(trial.line())
    check(trial, kills=1)


async def main(cells: int, kills: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        env = await start_dev_server()
        try:
            trial = await run_trial(env.client, address_of(env), Path(folder), cells, kills)
        finally:
            await env.shutdown()
    print(trial.line())
    check(trial, kills)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--kills", type=int, default=3)
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main(arguments.cells, arguments.kills)))

"""Experiments over the API (`/v1/experiments`: `routes/experiments.py`) and the datasets they run over
(`/v1/datasets`): plan (every cell checked before anything starts: 422 naming the field), admit (the tenant's
caps, with the experiment's budget reserved as a run's), start with its event feed, read (the live grid and
report), cancel, rerun the failed cells, export. A matrix (`vary` on a create) is an experiment of one row
(`matrix`). Another tenant's experiment answers 404, exactly as an unknown one."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import UploadFile
from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from kit.datasets import BadDataset, DatasetStore, SavedDataset, read_rows
from kit.experiment_report import build_report, cells_csv, cells_jsonl
from kit.run_reading import STATUS, RunReader, bounded_query
from kit.storage import load
from models.events import EventFeed, Seen
from models.experiment import (
    EXPERIMENT_PIPELINE,
    EXPERIMENT_TYPE,
    Dataset,
    ExperimentPlan,
    ExperimentRequest,
    ExperimentStatus,
    status_of,
)
from models.experiment_api import CellView, ExperimentCreated, ExperimentView, RerunStarted
from models.experiment_report import ExperimentReport
from models.pipelines import PIPELINES, PipelineSpec
from models.priority import PRIORITY_KEYS, fairness_key, run_priority
from models.settings import WORKFLOW_QUEUE
from models.usage import CostLimit
from models.validation import field_problems
from models.workflow_interfaces import ExperimentWorkflow, RunEventsWorkflow
from starter import run_labels
from starter.api import creates, standings
from starter.api.caps import admitted
from starter.api.errors import Conflict, Invalid
from starter.api.events import ensure_feed, feed_id, last_seq
from starter.api.service import Caller, Service, described, owned
from starter.api.webhooks import guard_webhook
from starter.experiment_plan import PlanProblem, merged, plan

TYPES = {EXPERIMENT_TYPE}
READ_TIMEOUT_S = 30  # a closed experiment's result or its stored report
JOBS: dict[str, Callable[[Service, Caller, Any], Awaitable[BaseModel]]] = {  # a cell's request → its priced job
    "image": creates.image_job,
    "world": lambda svc, caller, body: _ready(creates.world_job(svc, body)),
    "meme": lambda svc, caller, body: _ready(creates.meme_job(svc, body)),
}


async def _ready(value: Any) -> Any:
    return value


# --- planning and starting -------------------------------------------------------------------------------


async def rows_of(svc: Service, caller: Caller, dataset: Dataset) -> list[dict[str, Any]]:
    """The rows given, or the tenant's saved dataset's (422 for one it has not saved)."""
    if dataset.rows is not None:
        return dataset.rows
    saved = await DatasetStore(svc.store, svc.keys.database).get(caller.tenant, dataset.id or "")
    if saved is None:
        raise Invalid("body.dataset.id", f"no dataset {dataset.id!r} (POST /v1/datasets first)")
    return saved.data


async def planned(svc: Service, caller: Caller, request: ExperimentRequest) -> ExperimentPlan:
    """Every cell checked as the pipeline's create checks it (its references this tenant's), each variant's
    cells priced: the plan, or 422 naming the first bad field."""
    if request.webhook and (problem := await guard_webhook(svc.settings, str(request.webhook), "body.webhook")):
        raise problem
    rows = await rows_of(svc, caller, request.dataset)
    job_of = JOBS[request.pipeline]

    async def price(cell: Any) -> dict[str, Any]:
        try:
            return (await job_of(svc, caller, cell)).model_dump(mode="json")
        except Invalid as exc:  # the cell's budget: the base's, the settings' or the experiment's share
            own = "max_cost_usd" in request.base
            raise PlanProblem("base.max_cost_usd" if own else "max_cost_usd", exc.problem.errors[0].message) from exc

    try:
        experiment = await plan(
            request,
            rows,
            svc.settings,
            svc.catalog,
            price,
            PRIORITY_KEYS[EXPERIMENT_PIPELINE],
            fairness_key(caller.tenant) if caller.keyed else "",
        )
        await _check_references(svc, caller, request, rows)
    except PlanProblem as exc:
        raise Invalid(f"body.{exc.field}", exc.message) from exc
    return experiment


async def _check_references(svc: Service, caller: Caller, request: ExperimentRequest, rows: list[dict]) -> None:
    """Each row's references pass the create's checks (URLs guarded, uploads this tenant's)."""
    spec = PIPELINES[request.pipeline]
    if "references" not in spec.request.model_fields:
        return
    first = request.variants[0].set
    for n, row in enumerate(rows):
        cell = spec.request.model_validate(merged(request.base, row, first))
        try:
            await creates.check_references(svc, caller, cell)
        except Invalid as exc:
            field = exc.problem.errors[0].field.removeprefix("body.")
            where = f"dataset.rows[{n}].{field}" if "references" in row else f"base.{field}"
            raise PlanProblem(where, exc.problem.errors[0].message) from exc


def experiment_text(experiment: ExperimentPlan) -> str:
    """How lists name an experiment."""
    return f"{experiment.pipeline} · {len(experiment.rows)} rows × {len(experiment.variants)} variants"


async def start(
    svc: Service, caller: Caller, experiment: ExperimentPlan, request: BaseModel, webhooks: Any, key: str | None
) -> ExperimentCreated:
    """Admit and start the experiment and its event feed; the same `Idempotency-Key` again answers the one it
    started (409 with another request)."""
    experiment_id = creates.run_id(caller, EXPERIMENT_PIPELINE, key)
    digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
    created = ExperimentCreated(
        id=experiment_id,
        pipeline=experiment.pipeline,
        status="running",
        cells=experiment.cells,
        urls=svc.urls.experiment_urls(experiment_id),
    )
    feed = (svc, experiment_id, EXPERIMENT_PIPELINE, caller.tenant, webhooks)
    if key is not None and (existing := await described(svc, experiment_id)) is not None:
        same = creates.same_request(existing, digest, created)
        await ensure_feed(*feed)
        return same
    try:
        await _start(svc, caller, experiment, experiment_id, digest, WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError:  # a concurrent create with the same key won
        if (existing := await described(svc, experiment_id)) is None:
            raise
        created = creates.same_request(existing, digest, created)
    await ensure_feed(*feed)
    return created


async def _start(
    svc: Service, caller: Caller, experiment: ExperimentPlan, experiment_id: str, digest: str, reuse: Any
) -> None:
    left = None if experiment.max_cost_usd is None else max(0.0, experiment.max_cost_usd - experiment.spent_usd)
    reserve = None if left is None else CostLimit(max_usd=left, text_call_usd=0, image_call_usd=0)
    async with admitted(svc, caller, experiment_id, reserve):  # the tenant's caps: a slot, or 429/402
        labels = await run_labels.start_options(
            svc.client,
            svc.settings,
            EXPERIMENT_PIPELINE,
            experiment_text(experiment),
            experiment.model_copy(update={"rows": experiment.rows[:3], "outcomes": []}),
            experiment_id,
            caller.keyed_tenant,
        )
        memo = labels["memo"] | {creates.MEMO_TENANT: caller.tenant, creates.MEMO_REQUEST: digest}
        await svc.client.start_workflow(
            ExperimentWorkflow.run,
            experiment,
            id=experiment_id,
            task_queue=WORKFLOW_QUEUE,
            priority=run_priority(EXPERIMENT_PIPELINE, experiment_id, caller.keyed_tenant),
            id_reuse_policy=reuse,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            **(labels | {"memo": memo}),
        )


async def create(svc: Service, caller: Caller, request: ExperimentRequest, key: str | None) -> ExperimentCreated:
    experiment = await planned(svc, caller, request)
    return await start(svc, caller, experiment, request, creates.webhooks_of(svc, caller, request), key)


async def matrix(svc: Service, caller: Caller, spec: PipelineSpec, body: Any, key: str | None) -> ExperimentCreated:
    """A create with `vary`: one row (the create's job) under every combination of the varied fields, each
    `repeat` times, as one experiment; its `max_cost_usd` is each cell's budget. A problem names the create's
    field (`body.vary.threshold`, `body.prompt`)."""
    axes = [[(path, value) for value in values] for path, values in (body.vary or {}).items()]
    variants = [
        {"name": ",".join(f"{path}={_shown(value)}" for path, value in combination), "set": dict(combination)}
        for combination in itertools.product(*axes)
    ]
    job = body.model_dump(mode="json", exclude_unset=True, exclude=creates.OPTIONS - {"max_cost_usd"})
    try:
        request = ExperimentRequest.model_validate(
            {
                "pipeline": spec.name,
                "dataset": {"rows": [{spec.text_field: job.pop(spec.text_field)}]},
                "base": job,
                "variants": variants,
                "repeat": body.repeat,
            }
        )
        experiment = await planned(svc, caller, request)
    except ValidationError as exc:
        raise Invalid("body.vary", field_problems(exc)[0]["message"]) from exc
    except Invalid as exc:
        field = exc.problem.errors[0].field
        raise Invalid(_create_field(field), exc.problem.errors[0].message) from exc
    return await start(svc, caller, experiment, body, creates.webhooks_of(svc, caller, body), key)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _create_field(field: str) -> str:
    """An experiment's field as the create that asked for the matrix names it."""
    match = re.match(r"body\.variants\[(\d+)\]\.set\.(.*)", field)
    if match:
        return f"body.vary.{match[2]}"
    return re.sub(r"^body\.(base|dataset\.rows\[0\])\.", "body.", field)


# --- reading ---------------------------------------------------------------------------------------------


async def live_grid(svc: Service, described: Any) -> ExperimentStatus | None:
    """The grid: asked of the running experiment, or its result's once it has completed (a cancelled one,
    which has no result, is asked too: its worker replays it)."""
    handle = svc.client.get_workflow_handle(described.id, run_id=described.run_id)
    if described.status == WorkflowExecutionStatus.COMPLETED:
        async with asyncio.timeout(READ_TIMEOUT_S):
            result = await svc.client.get_workflow_handle_for(ExperimentWorkflow.run, described.id).result()
        grid = {o.cell: o for o in result.plan.outcomes}
        return status_of(result.plan.model_copy(update={"report": result.report}), grid, result.state)
    return await bounded_query(handle, ExperimentWorkflow.status, ExperimentStatus | None)


async def _report(svc: Service, experiment_id: str, grid: ExperimentStatus, closed: bool) -> ExperimentReport:
    """The stored report of an experiment that has ended, else the report of its cells as they stand."""
    if closed and grid.report is not None:
        return ExperimentReport.model_validate_json(await load(svc.store, grid.report.report))
    return await asyncio.to_thread(build_report, grid.report_request(experiment_id))


async def view(svc: Service, caller: Caller, experiment_id: str) -> ExperimentView:
    """The experiment as it stands: its grid, counts, dollars and report (409 while no worker answers)."""
    described = await owned(svc, caller, experiment_id, TYPES, "experiment")
    grid = await live_grid(svc, described)
    if grid is None:
        raise Conflict("no answer", "no worker answered for this experiment yet", retry_after_s=2)
    closed = described.status != WorkflowExecutionStatus.RUNNING
    cells = [
        CellView(
            **outcome.model_dump(),
            variant_name=grid.variants[outcome.variant],
            run_url=svc.urls.run(outcome.child_id) if outcome.child_id else None,
            picture_url=svc.urls.artifact(outcome.picture) if outcome.picture else None,
        )
        for outcome in grid.outcomes
    ]
    return ExperimentView(
        **grid.model_dump(exclude={"outcomes", "report"}),
        id=experiment_id,
        status=STATUS[described.status],
        outcomes=cells,
        report=await _report(svc, experiment_id, grid, closed),
        people=await asyncio.to_thread(standings.leaderboard, svc.keys.database, caller.tenant, experiment_id),
        started_at=described.start_time,
        closed_at=described.close_time,
        urls=svc.urls.experiment_urls(experiment_id),
    )


async def export(svc: Service, caller: Caller, experiment_id: str, form: str) -> tuple[bytes, str]:
    """The report (`json`) or every cell (`csv`, `jsonl`): stored once it has ended, else as it stands."""
    described = await owned(svc, caller, experiment_id, TYPES, "experiment")
    grid = await live_grid(svc, described)
    if grid is None:
        raise Conflict("no answer", "no worker answered for this experiment yet", retry_after_s=2)
    closed = described.status != WorkflowExecutionStatus.RUNNING
    if form == "json":
        report = await _report(svc, experiment_id, grid, closed)
        return report.model_dump_json(indent=2).encode(), "application/json"
    if closed and grid.report is not None:
        ref = grid.report.csv if form == "csv" else grid.report.jsonl
        return await load(svc.store, ref), ref.content_type
    request = grid.report_request(experiment_id)
    return (cells_csv(request), "text/csv") if form == "csv" else (cells_jsonl(request), "application/x-ndjson")


# --- changing it -----------------------------------------------------------------------------------------


async def cancel(svc: Service, caller: Caller, experiment_id: str) -> ExperimentView:
    """Cancel a running experiment: every running cell is cancelled, no more start (a finished one is left)."""
    described = await owned(svc, caller, experiment_id, TYPES, "experiment")
    if described.status == WorkflowExecutionStatus.RUNNING:
        await svc.client.get_workflow_handle(experiment_id).cancel()
    return await view(svc, caller, experiment_id)


async def rerun_failed(svc: Service, caller: Caller, experiment_id: str) -> RerunStarted:
    """Start the failed and refused cells again: in the running experiment, or (once it has completed) as a
    new run of it carrying every outcome, its event feed going on from its last event. 409 for a cancelled
    experiment."""
    described = await owned(svc, caller, experiment_id, TYPES, "experiment")
    answer = RerunStarted(id=experiment_id, cells=0, urls=svc.urls.experiment_urls(experiment_id))
    if described.status == WorkflowExecutionStatus.RUNNING:
        handle = svc.client.get_workflow_handle_for(ExperimentWorkflow.run, experiment_id)
        try:
            rerun = await handle.execute_update(ExperimentWorkflow.rerun_failed)
            return answer.model_copy(update={"cells": rerun.cells})
        except WorkflowUpdateFailedError as exc:
            if "completed" not in str(exc.cause):
                raise Conflict("not now", str(exc.cause)) from exc
            async with asyncio.timeout(READ_TIMEOUT_S):  # it is closing: start it again once it has
                await handle.result()
            described = await owned(svc, caller, experiment_id, TYPES, "experiment")
    if described.status != WorkflowExecutionStatus.COMPLETED:
        raise Conflict("not completed", f"experiment {experiment_id!r} ended {STATUS[described.status]}")
    async with asyncio.timeout(READ_TIMEOUT_S):
        result = await svc.client.get_workflow_handle_for(ExperimentWorkflow.run, experiment_id).result()
    experiment = result.plan.model_copy(update={"report": result.report, "runs": result.plan.runs + 1})
    if not (cells := experiment.rerun_failed()):
        return answer
    await _feed_ended(svc, experiment_id, experiment.runs - 1)
    digest = hashlib.sha256(f"rerun {experiment.runs}".encode()).hexdigest()
    try:
        await _start(svc, caller, experiment, experiment_id, digest, WorkflowIDReusePolicy.ALLOW_DUPLICATE)
    except WorkflowAlreadyStartedError as exc:  # a rerun asked for at the same moment started it
        raise Conflict("not now", f"experiment {experiment_id!r} is running its failed cells again already") from exc
    await _continue_feed(svc, caller, experiment_id, experiment)
    return answer.model_copy(update={"cells": cells})


def _feed_of(experiment_id: str, run: int) -> str:
    """The event feed of the experiment's `run`-th run (the first's is every run's: `events.feed_id`)."""
    return feed_id(experiment_id) if run <= 1 else f"{feed_id(experiment_id)}-{run}"


async def _feed_ended(svc: Service, experiment_id: str, run: int) -> None:
    """Wait for the last run's feed to record its end, so it never reads the next run as its own (409 when it
    takes too long: try again)."""
    if await described(svc, _feed_of(experiment_id, run)) is None:
        return  # nobody followed it (started by the CLI)
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            await svc.client.get_workflow_handle(_feed_of(experiment_id, run)).result()
    except TimeoutError as exc:
        raise Conflict("still closing", "its events are still being recorded", retry_after_s=5) from exc


async def _continue_feed(svc: Service, caller: Caller, experiment_id: str, experiment: ExperimentPlan) -> None:
    """A feed for the new run, going on from the last event recorded, to the first feed's webhooks."""
    first = await described(svc, feed_id(experiment_id))  # its webhooks are the first feed's
    started = await RunReader(svc.client, svc.store).job(first) if first is not None else {}
    feed = EventFeed(
        run_id=experiment_id,
        pipeline=EXPERIMENT_PIPELINE,
        tenant=caller.tenant,
        webhooks=EventFeed.model_validate(started).webhooks if started else [],
        seen=Seen(started=True, cells=experiment.finished),
        next_seq=await last_seq(svc, experiment_id) + 1,
    )
    await svc.client.start_workflow(
        RunEventsWorkflow.run,
        feed,
        id=_feed_of(experiment_id, experiment.runs),
        task_queue=WORKFLOW_QUEUE,
        static_summary=f"events of {experiment_id} (run {experiment.runs})",
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


# --- datasets --------------------------------------------------------------------------------------------


async def save_dataset(svc: Service, caller: Caller, file: UploadFile) -> SavedDataset:
    """A JSONL or CSV upload, read (422 naming its bad line) and kept for the tenant's experiments."""
    data = await file.read()
    try:
        rows = await asyncio.to_thread(read_rows, data, file.filename or "")
    except BadDataset as exc:
        raise Invalid("body.file", str(exc)) from exc
    return await DatasetStore(svc.store, svc.keys.database).save(caller.tenant, file.filename or "dataset", rows)

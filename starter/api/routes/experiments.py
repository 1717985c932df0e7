"""`/v1/experiments` and `/v1/datasets` (the work: `starter.api.experiments`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response, UploadFile
from fastapi.responses import StreamingResponse

from kit.datasets import SavedDataset
from models.experiment import ExperimentRequest
from models.experiment_api import ExperimentCreated, ExperimentView, RerunStarted
from models.experiment_report import ExperimentReport
from starter.api import events, experiments
from starter.api.events import STREAM_RESPONSES, ResumeAfter
from starter.api.routes.creates import IdempotencyKey
from starter.api.service import Svc, Who

router = APIRouter(prefix="/v1", tags=["experiments"])


@router.post("/experiments", status_code=202, response_model=ExperimentCreated, summary="Start an experiment")
async def create(body: ExperimentRequest, response: Response, svc: Svc, caller: Who, key: IdempotencyKey = None) -> Any:
    """Every cell (row × variant × repeat) is checked before anything starts: a bad one is a 422 naming its
    field, e.g. `body.variants[1].set.threshold` or `body.dataset.rows[3].prompt`."""
    created = await experiments.create(svc, caller, body, key)
    response.headers["Location"] = created.urls.run
    return created


@router.get("/experiments/{experiment_id}", response_model=ExperimentView, summary="An experiment's grid and report")
async def get_experiment(experiment_id: str, svc: Svc, caller: Who) -> Any:
    return await experiments.view(svc, caller, experiment_id)


@router.post("/experiments/{experiment_id}/cancel", status_code=202, response_model=ExperimentView, summary="Cancel it")
async def cancel(experiment_id: str, svc: Svc, caller: Who) -> Any:
    """Every running cell is cancelled and no other starts; the report covers what was done."""
    return await experiments.cancel(svc, caller, experiment_id)


@router.post(
    "/experiments/{experiment_id}/rerun-failed",
    status_code=202,
    response_model=RerunStarted,
    summary="Start the failed and refused cells again",
)
async def rerun_failed(experiment_id: str, svc: Svc, caller: Who) -> Any:
    return await experiments.rerun_failed(svc, caller, experiment_id)


@router.get(
    "/experiments/{experiment_id}/report", response_model=ExperimentReport, summary="Its report (live while it runs)"
)
async def report(experiment_id: str, svc: Svc, caller: Who) -> Response:
    data, media_type = await experiments.export(svc, caller, experiment_id, "json")
    return Response(data, media_type=media_type)


@router.get(
    "/experiments/{experiment_id}/report.{form}",
    summary="Every cell as CSV or JSON lines",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
async def report_export(experiment_id: str, form: Literal["csv", "jsonl"], svc: Svc, caller: Who) -> Response:
    data, media_type = await experiments.export(svc, caller, experiment_id, form)
    name = f"{experiment_id}.{form}".replace('"', "")
    return Response(data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get(
    "/experiments/{experiment_id}/events",
    summary="Its events (Server-Sent Events): experiment.cell.completed, experiment.completed",
    response_class=StreamingResponse,
    responses=STREAM_RESPONSES,
)
async def experiment_events(experiment_id: str, svc: Svc, caller: Who, start: ResumeAfter) -> Response:
    return await events.follow(svc, svc.streams, caller, experiment_id, start)


@router.post("/datasets", status_code=201, response_model=SavedDataset, summary="Save a dataset (JSONL or CSV)")
async def save_dataset(file: UploadFile, svc: Svc, caller: Who) -> Any:
    """Rows for experiments (`dataset: {"id": …}`): a bad line is a 422 naming it (`body.file: line 3: …`)."""
    return await experiments.save_dataset(svc, caller, file)

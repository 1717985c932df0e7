"""The activity that stores an experiment's report and its cells' exports under `experiments/<id>/` when it ends
(the report itself: `kit.experiment_report`)."""

from __future__ import annotations

import asyncio

from temporalio import activity

from kit.experiment_report import build_report, cells_csv, cells_jsonl, report_key
from kit.storage import ArtifactStore
from models.experiment import WRITE_REPORT, ReportRefs, ReportRequest


class ExperimentActivities:
    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    @activity.defn(name=WRITE_REPORT)
    async def write_experiment_report(self, request: ReportRequest) -> ReportRefs:
        """The report and the cells' exports, stored under `experiments/<id>/` (overwritten by a later run's)."""
        report = await asyncio.to_thread(build_report, request)  # numpy work: the heartbeats go on meanwhile
        key = request.experiment_id
        return ReportRefs(
            report=await self.store.put(
                report_key(key, "report.json"), report.model_dump_json(indent=2).encode(), "application/json"
            ),
            csv=await self.store.put(report_key(key, "cells.csv"), cells_csv(request), "text/csv"),
            jsonl=await self.store.put(report_key(key, "cells.jsonl"), cells_jsonl(request), "application/x-ndjson"),
        )

"""Knowledge-base ingestion: each document chunked and embedded on the scoring queue."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.conversation import DocSummary, IngestJob
    from workflows.inputs import parse_input
    from workflows.options import scoring_call


@workflow.defn
class KnowledgeIngestWorkflow:
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> list[DocSummary]:
        job = parse_input(IngestJob, raw)
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity("ingest_document", doc, result_type=DocSummary, **scoring_call())
                    for doc in job.docs
                )
            )
        )

"""Knowledge-base ingestion: each document chunked and embedded on the scoring queue."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from models.conversation import DocSummary, IngestJob
    from workflows.options import scoring_call


@workflow.defn(failure_exception_types=[ValidationError])
class KnowledgeIngestWorkflow:
    @workflow.run
    async def run(self, job: IngestJob) -> list[DocSummary]:
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity("ingest_document", doc, result_type=DocSummary, **scoring_call())
                    for doc in job.docs
                )
            )
        )

"""Knowledge-base ingestion: each document chunked and embedded on the scoring queue."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.conversation import DocSummary, IngestJob
    from models.text import shorten
    from workflows import console
    from workflows.inputs import parse_input
    from workflows.options import scoring_call


@workflow.defn
class KnowledgeIngestWorkflow:
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> list[DocSummary]:
        job = parse_input(IngestJob, raw)
        console.show(f"**knowledge** · ingesting {len(job.docs)} document(s)")
        summaries = list(
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        "ingest_document",
                        doc,
                        result_type=DocSummary,
                        **scoring_call(f"knowledge · ingest {shorten(doc.name, 40)}"),
                    )
                    for doc in job.docs
                )
            )
        )
        console.show(f"**knowledge** · {len(summaries)} document(s) ingested")
        console.record(state="COMPLETED")
        return summaries

"""Knowledge-base ingestion: each document chunked and embedded on the scoring queue (which must have a
worker: with none polling it the ingest fails at once, saying so)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.conversation import DocSummary, IngestJob
    from models.text import shorten
    from workflows import console
    from workflows.failures import failure_cause, stop_if_cancelled
    from workflows.inputs import parse_input
    from workflows.options import scoring_call
    from workflows.scoring import ScoringQueue

INGEST_DEADLINE = timedelta(minutes=30)  # one document's ingest, queued behind the others and run


@workflow.defn
class KnowledgeIngestWorkflow:
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> list[DocSummary]:
        job = parse_input(IngestJob, raw)
        console.show(f"**knowledge** · ingesting {len(job.docs)} document(s)")
        scoring = ScoringQueue()
        ingests = (
            scoring.execute(
                "ingest_document",
                doc,
                result_type=DocSummary,
                **scoring_call(f"knowledge · ingest {shorten(doc.name, 40)}", INGEST_DEADLINE),
            )
            for doc in job.docs
        )
        try:
            summaries = list(await asyncio.gather(*ingests))
        except ActivityError as err:
            stop_if_cancelled(err)
            raise ApplicationError(f"knowledge ingest failed: {failure_cause(err)}", non_retryable=True) from err
        console.show(f"**knowledge** · {len(summaries)} document(s) ingested")
        console.set_search_attributes(state="COMPLETED")
        return summaries

"""The knowledge base conversations retrieve from (`/v1/knowledge`): a tenant's own (the keyless API's is
the shared one the CLI's `kb` manages). Documents are chunked and embedded on the scoring queue."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from fastapi import APIRouter, Response, UploadFile
from pydantic import BaseModel
from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy

from activities.storage import artifact_key, kb_doc_key, kb_prefix
from models.conversation import DocSummary, IngestDoc, IngestJob, KnowledgeDoc
from models.priority import run_priority
from models.settings import WORKFLOW_QUEUE
from starter import run_labels
from starter.api.problems import ApiProblem, FieldProblem, invalid
from starter.api.service import Caller, Svc, Who
from workflows.knowledge import KnowledgeIngestWorkflow

router = APIRouter(prefix="/v1/knowledge", tags=["knowledge"])
MAX_DOC_BYTES = 2 * 1024 * 1024
WAIT_S = 30.0  # a create waits this long for the ingest, then answers 202 with the run to follow


class Listed(BaseModel):
    doc_id: str
    name: str
    chunks: int


class Ingesting(BaseModel):
    id: str  # the ingest run (GET /v1/knowledge lists the documents once it is done)
    documents: list[DocSummary] = []


def knowledge_of(caller: Caller) -> str | None:
    """Whose knowledge base: the tenant's own, or (keyless) the shared one."""
    return caller.tenant if caller.keyed else None


@router.post("", status_code=201, response_model=Ingesting, summary="Add documents (UTF-8 text, multipart)")
async def add(files: list[UploadFile], response: Response, svc: Svc, caller: Who) -> Any:
    knowledge = knowledge_of(caller)
    docs = []
    for n, file in enumerate(files):
        data = await file.read(MAX_DOC_BYTES + 1)
        field = f"body.files.{n}"
        if len(data) > MAX_DOC_BYTES:
            return invalid([FieldProblem(field=field, message=f"larger than {MAX_DOC_BYTES // (1024 * 1024)} MB")])
        try:
            if not data.decode("utf-8").strip():
                return invalid([FieldProblem(field=field, message="empty")])
        except UnicodeDecodeError:
            return invalid([FieldProblem(field=field, message="not UTF-8 text")])
        name = (file.filename or f"document-{n + 1}.txt")[:200]
        digest = hashlib.sha256(data).hexdigest()
        where = ("kb", "sources") if knowledge is None else ("kb", "tenants", knowledge, "sources")
        ref = await svc.store.put(artifact_key(*where, f"{digest[:16]}-{name}"), data, "text/plain")
        docs.append(IngestDoc(name=name, source=ref, knowledge=knowledge))
    batch = hashlib.sha256("".join(d.source.sha256 for d in docs).encode()).hexdigest()[:16]
    run_id = f"{caller.tenant}.knowledge-{batch}"
    job = IngestJob(docs=docs)
    tenant = caller.tenant if caller.keyed else None
    labels = await run_labels.start_options(svc.client, svc.settings, "knowledge", "ingest", job, run_id, tenant)
    handle = await svc.client.start_workflow(
        KnowledgeIngestWorkflow.run,
        job,
        id=run_id,
        task_queue=WORKFLOW_QUEUE,
        priority=run_priority("knowledge", run_id, tenant),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,  # the same documents: the same ingest
        **labels,
    )
    try:
        summaries = await asyncio.wait_for(handle.result(), WAIT_S)
    except TimeoutError:
        response.status_code = 202
        return Ingesting(id=run_id)
    except WorkflowFailureError as exc:
        raise ApiProblem(503, "ingest failed", str(exc.cause or exc), {"Retry-After": "30"}) from exc
    return Ingesting(id=run_id, documents=[DocSummary.model_validate(s) for s in summaries])


@router.get("", response_model=list[Listed], summary="The documents")
async def listing(svc: Svc, caller: Who) -> Any:
    keys = await svc.store.keys(kb_prefix(knowledge_of(caller)))
    docs = [KnowledgeDoc.model_validate_json(await svc.store.read(key)) for key in keys]
    return [Listed(doc_id=d.doc_id, name=d.name, chunks=len(d.chunks)) for d in docs]


@router.delete("/{doc_id}", status_code=204, summary="Remove a document")
async def remove(doc_id: str, svc: Svc, caller: Who) -> Response:
    if not await svc.store.delete(kb_doc_key(doc_id, knowledge_of(caller))):
        raise ApiProblem(404, "not found", f"no document {doc_id!r}")
    return Response(status_code=204)

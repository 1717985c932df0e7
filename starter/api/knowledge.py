"""The knowledge base conversations retrieve from (`/v1/knowledge`: `routes/knowledge.py`, and the Studio's
knowledge pages): a tenant's own (the keyless API's is the shared one the CLI's `kb` manages). Documents are
chunked and embedded on the scoring queue."""

from __future__ import annotations

import asyncio
import hashlib

from fastapi import UploadFile
from minio.error import S3Error
from pydantic import BaseModel
from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy

from kit.storage import kb_doc_key, kb_prefix, kb_source_key
from models.conversation import DocSummary, IngestDoc, IngestJob, KnowledgeDoc
from models.priority import run_priority
from models.settings import WORKFLOW_QUEUE
from models.workflow_interfaces import KnowledgeIngestWorkflow
from starter import run_labels
from starter.api.errors import Invalid, NotFound, Unavailable
from starter.api.service import Caller, Service

MAX_DOC_BYTES = 2 * 1024 * 1024


class Listed(BaseModel):
    doc_id: str
    name: str
    chunks: int


class Ingesting(BaseModel):
    id: str  # the ingest run (GET /v1/knowledge lists the documents once it is done)
    documents: list[DocSummary] = []
    done: bool = False  # the ingest has finished (201); else it is still embedding (202): follow the run


async def _text(file: UploadFile, field: str) -> bytes:
    """An uploaded document's bytes: UTF-8 text, not empty, at most MAX_DOC_BYTES (422 naming its field)."""
    data = await file.read(MAX_DOC_BYTES + 1)
    if len(data) > MAX_DOC_BYTES:
        raise Invalid(field, f"larger than {MAX_DOC_BYTES // (1024 * 1024)} MB")
    try:
        if not data.decode("utf-8").strip():
            raise Invalid(field, "empty")
    except UnicodeDecodeError as exc:
        raise Invalid(field, "not UTF-8 text") from exc
    return data


async def ingest(svc: Service, caller: Caller, files: list[UploadFile]) -> Ingesting:
    """Store the documents and embed them (the same documents: the same ingest); the documents once done
    within ATELIER_INGEST_WAIT_S, else only the run to follow (503 when it fails)."""
    knowledge = caller.keyed_tenant
    docs = []
    for n, file in enumerate(files):
        data = await _text(file, f"body.files.{n}")
        name = (file.filename or f"document-{n + 1}.txt")[:200]
        digest = hashlib.sha256(data).hexdigest()
        ref = await svc.store.put(kb_source_key(digest, name, knowledge), data, "text/plain")
        docs.append(IngestDoc(name=name, source=ref, knowledge=knowledge))
    batch = hashlib.sha256("".join(d.source.sha256 for d in docs).encode()).hexdigest()[:16]
    run_id = f"{caller.tenant}.knowledge-{batch}"
    job = IngestJob(docs=docs)
    labels = await run_labels.start_options(svc.client, svc.settings, "knowledge", "ingest", job, run_id, knowledge)
    handle = await svc.client.start_workflow(
        KnowledgeIngestWorkflow.run,
        job,
        id=run_id,
        task_queue=WORKFLOW_QUEUE,
        priority=run_priority("knowledge", run_id, knowledge),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,  # the same documents: the same ingest
        **labels,
    )
    try:
        summaries = await asyncio.wait_for(handle.result(), svc.settings.ingest_wait_s)
    except TimeoutError:
        return Ingesting(id=run_id)
    except WorkflowFailureError as exc:
        raise Unavailable("ingest failed", str(exc.cause or exc), 30) from exc
    return Ingesting(id=run_id, documents=[DocSummary.model_validate(s) for s in summaries], done=True)


async def documents(svc: Service, caller: Caller) -> list[Listed]:
    keys = await svc.store.keys(kb_prefix(caller.keyed_tenant))
    docs = [KnowledgeDoc.model_validate_json(await svc.store.read(key)) for key in keys]
    return [Listed(doc_id=d.doc_id, name=d.name, chunks=len(d.chunks)) for d in docs]


async def document(svc: Service, caller: Caller, doc_id: str) -> KnowledgeDoc:
    """One document with its passages."""
    try:
        return KnowledgeDoc.model_validate_json(await svc.store.read(kb_doc_key(doc_id, caller.keyed_tenant)))
    except (FileNotFoundError, ValueError, S3Error) as exc:
        raise NotFound("document", doc_id) from exc


async def remove(svc: Service, caller: Caller, doc_id: str) -> None:
    if not await svc.store.delete(kb_doc_key(doc_id, caller.keyed_tenant)):
        raise NotFound("document", doc_id)

"""New runs: a form per pipeline (filled from a run when started again from it), conversations and the
knowledge base."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from minio.error import S3Error

from activities.storage import kb_doc_key
from models.api import Pipeline
from models.conversation import KnowledgeDoc
from models.pipelines import PIPELINES
from starter.api.caps import tenant_runs
from starter.api.conversations import history as conversation_history
from starter.api.knowledge import knowledge_of
from starter.api.knowledge import listing as knowledge_listing
from starter.api.problems import ApiProblem
from starter.api.runs import owned
from starter.api.service import Svc
from starter.studio.access import Looker, page
from starter.studio.forms import fields_of
from starter.studio.run_views import row_of
from starter.studio.runs_data import studio_runs
from workflows.conversation import ConversationWorkflow

router = APIRouter(include_in_schema=False)


@router.get("/new/{pipeline}")
async def new_run(pipeline: Pipeline, request: Request, svc: Svc, look: Looker, start_from: str = "") -> Response:
    spec = PIPELINES[pipeline]
    values: dict = {}
    if start_from:
        _, described = await owned(svc, look.caller, start_from)
        values = await studio_runs(svc).job(described)
        if (values.get("cost") or {}).get("max_usd") is not None:
            values["max_cost_usd"] = values["cost"]["max_usd"]
    references = [r for r in values.get("references", []) if isinstance(r, dict)]
    uploads = "references" in spec.request.model_fields  # reference pictures, uploaded beside the fields
    context = {"spec": spec, "title": spec.title, "fields": fields_of(spec.request, values), "uploads": uploads}
    return page(request, "new.html", look, svc, start_from=start_from, references=references, **context)


@router.get("/conversations")
async def conversations(request: Request, svc: Svc, look: Looker) -> Response:
    query = tenant_runs(look.caller, f'WorkflowType = "{ConversationWorkflow.__name__}"')
    rows = [await row_of(svc, run) async for run in svc.client.list_workflows(query, limit=50)]
    return page(request, "conversations.html", look, svc, rows=rows)


@router.get("/conversations/{conversation_id}")
async def conversation(conversation_id: str, request: Request, svc: Svc, look: Looker) -> Response:
    found = await conversation_history(conversation_id, svc, look.caller)
    ui = svc.settings.workflow_ui_link(conversation_id)
    return page(request, "chat.html", look, svc, conversation_id=conversation_id, history=found, ui=ui)


@router.get("/knowledge")
async def knowledge(request: Request, svc: Svc, look: Looker) -> Response:
    docs = await knowledge_listing(svc, look.caller)
    return page(request, "knowledge.html", look, svc, docs=docs)


@router.get("/knowledge/{doc_id}")
async def document(doc_id: str, request: Request, svc: Svc, look: Looker) -> Response:
    """One document's passages, each with its anchor (`#chunk-<n>`: where a reply's citation points)."""
    try:
        doc = KnowledgeDoc.model_validate_json(await svc.store.read(kb_doc_key(doc_id, knowledge_of(look.caller))))
    except (FileNotFoundError, ValueError, S3Error) as exc:
        raise ApiProblem(404, "not found", f"no document {doc_id!r}") from exc
    return page(request, "document.html", look, svc, doc=doc)

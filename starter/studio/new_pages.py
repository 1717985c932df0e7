"""New runs: a form per pipeline (filled from a run when started again from it), conversations and the
knowledge base."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from models.api import Pipeline
from models.pipelines import PIPELINES
from starter.api import conversations, knowledge
from starter.api.errors import NotFound
from starter.api.runs import owned
from starter.api.service import Svc
from starter.studio.access import Looker, page
from starter.studio.forms import fields_of, offer_models
from starter.studio.run_views import row_of
from starter.studio.runs_data import studio_runs

router = APIRouter(include_in_schema=False)


@router.get("/new/{pipeline}")
async def new_run(pipeline: Pipeline, request: Request, svc: Svc, look: Looker, start_from: str = "") -> Response:
    spec = PIPELINES[pipeline]
    if not spec.form:  # a world's life starts from its world's page
        raise NotFound("form", f"new {pipeline}")
    values: dict = {}
    if start_from:
        _, described = await owned(svc, look.caller, start_from)
        values = await studio_runs(svc).job(described)
        if (values.get("cost") or {}).get("max_usd") is not None:
            values["max_cost_usd"] = values["cost"]["max_usd"]
    references = [r for r in values.get("references", []) if isinstance(r, dict)]
    uploads = "references" in spec.request.model_fields  # reference pictures, uploaded beside the fields
    fields = offer_models(fields_of(spec.request, values), svc.catalog)  # the run's models, or the defaults
    context = {"spec": spec, "title": spec.title, "fields": fields, "uploads": uploads}
    return page(request, "new.html", look, svc, start_from=start_from, references=references, **context)


@router.get("/conversations")
async def conversations_page(request: Request, svc: Svc, look: Looker) -> Response:
    rows = [await row_of(svc, run) for run in await conversations.listing(svc, look.caller)]
    models = {"text_models": svc.catalog.of_kind("text"), "text_default": svc.catalog.default("text").id}
    return page(request, "conversations.html", look, svc, rows=rows, **models)


@router.get("/conversations/{conversation_id}")
async def conversation_page(conversation_id: str, request: Request, svc: Svc, look: Looker) -> Response:
    found = await conversations.history(svc, look.caller, conversation_id)
    ui = svc.urls.temporal_ui(conversation_id)
    return page(request, "chat.html", look, svc, conversation_id=conversation_id, history=found, ui=ui)


@router.get("/knowledge")
async def knowledge_page(request: Request, svc: Svc, look: Looker) -> Response:
    docs = await knowledge.documents(svc, look.caller)
    return page(request, "knowledge.html", look, svc, docs=docs)


@router.get("/knowledge/{doc_id}")
async def document_page(doc_id: str, request: Request, svc: Svc, look: Looker) -> Response:
    """One document's passages, each with its anchor (`#chunk-<n>`: where a reply's citation points)."""
    doc = await knowledge.document(svc, look.caller, doc_id)
    return page(request, "document.html", look, svc, doc=doc)

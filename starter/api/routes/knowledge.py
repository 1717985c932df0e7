"""`/v1/knowledge`: add, list and remove documents (the work: `starter.api.knowledge`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, UploadFile

from starter.api import knowledge
from starter.api.knowledge import Ingesting, Listed
from starter.api.service import Svc, Who

router = APIRouter(prefix="/v1/knowledge", tags=["knowledge"])


@router.post("", status_code=201, response_model=Ingesting, summary="Add documents (UTF-8 text, multipart)")
async def add(files: list[UploadFile], response: Response, svc: Svc, caller: Who) -> Any:
    ingesting = await knowledge.ingest(svc, caller, files)
    if not ingesting.done:  # still embedding: follow the run
        response.status_code = 202
    return ingesting


@router.get("", response_model=list[Listed], summary="The documents")
async def listing(svc: Svc, caller: Who) -> Any:
    return await knowledge.documents(svc, caller)


@router.delete("/{doc_id}", status_code=204, summary="Remove a document")
async def remove(doc_id: str, svc: Svc, caller: Who) -> Response:
    await knowledge.remove(svc, caller, doc_id)
    return Response(status_code=204)

"""`GET /v1/models`: the catalog's models a run may ask for (`models` on a create), in OpenAI's list shape."""

from __future__ import annotations

from fastapi import APIRouter

from models.api import ModelList
from starter.api.service import Svc, Who

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelList, summary="The models a run may choose, per kind, with defaults")
async def list_models(svc: Svc, caller: Who) -> ModelList:
    return ModelList.of(svc.catalog)

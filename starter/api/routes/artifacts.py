"""`GET /v1/artifacts/{key}`: an artifact's bytes, or a picture sized down (the work: `starter.api.artifacts`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from starter.api import artifacts
from starter.api.service import Svc, Who
from starter.api.thumbnails import WIDTHS

router = APIRouter(prefix="/v1/artifacts", tags=["artifacts"])


@router.get("/{key:path}", summary="An artifact's bytes", response_class=Response)
async def get_artifact(
    key: str,
    request: Request,
    svc: Svc,
    caller: Who,
    width: Annotated[int | None, Query(description=f"a picture sized down (WebP): one of {WIDTHS}")] = None,
) -> Any:
    """The artifact's bytes (free); sized down, a thumbnail already made is free and one to make is one of
    the caller's requests (429 past its rate, 503 while too many are being made)."""
    return await artifacts.fetch(request, svc, caller, key, width)

"""`GET /v1/artifacts/{key}`: a run's pictures and files from the artifact store (local folder or S3),
with an ETag and caching headers. Only the caller's runs' artifacts, and the uploads it made."""

from __future__ import annotations

import hashlib
import mimetypes
from typing import Any

from fastapi import APIRouter, Request, Response
from minio.error import S3Error

from models.artifacts import REFERENCE_PREFIX
from starter.api.creates import upload_marker
from starter.api.problems import ApiProblem
from starter.api.service import Caller, Service, Svc, Who

router = APIRouter(prefix="/v1/artifacts", tags=["artifacts"])
RUN_PREFIXES = ("runs", "worlds")  # <prefix>/<run id>/…


async def readable(svc: Service, caller: Caller, key: str) -> bool:
    parts = key.split("/")
    if len(parts) < 2 or any(p in ("", ".", "..") for p in parts):
        return False
    if parts[0] in RUN_PREFIXES:
        return caller.owns(parts[1])
    if parts[0] == REFERENCE_PREFIX:
        return not caller.keyed or await svc.store.exists(upload_marker(caller, key))
    return not caller.keyed and parts[0] != "api"


@router.get("/{key:path}", summary="An artifact's bytes", response_class=Response)
async def get_artifact(key: str, request: Request, svc: Svc, caller: Who) -> Any:
    missing = ApiProblem(404, "not found", f"no artifact {key!r}")
    if not await readable(svc, caller, key):
        raise missing
    try:
        data = await svc.store.read(key)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, ValueError) as exc:
        raise missing from exc
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchBucket"):
            raise missing from exc
        raise
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=300"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    media = mimetypes.guess_type(key)[0] or "application/octet-stream"
    return Response(data, media_type=media, headers=headers)

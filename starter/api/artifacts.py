"""`GET /v1/artifacts/{key}`: a run's pictures and files from the artifact store (local folder or S3),
with an ETag and caching headers; `?width=` sizes a picture down. Only the caller's runs' artifacts, and the
uploads it made."""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from minio.error import S3Error
from PIL import UnidentifiedImageError

from models.artifacts import REFERENCE_PREFIX
from starter.api.creates import upload_marker
from starter.api.problems import ApiProblem, FieldProblem, invalid
from starter.api.service import Caller, Service, Svc, Who
from starter.api.thumbnails import WIDTHS, thumbnail

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
async def get_artifact(
    key: str,
    request: Request,
    svc: Svc,
    caller: Who,
    width: Annotated[int | None, Query(description=f"a picture sized down (WebP): one of {WIDTHS}")] = None,
) -> Any:
    if width is not None and width not in WIDTHS:
        return invalid([FieldProblem(field="query.width", message=f"one of {', '.join(map(str, WIDTHS))}")])
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
    digest = hashlib.sha256(data).hexdigest()
    etag = f'"{digest}{f"-w{width}" if width else ""}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=300"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if width is None:
        return Response(data, media_type=mimetypes.guess_type(key)[0] or "application/octet-stream", headers=headers)
    small = svc.thumbnails.get(digest, width)
    if small is None:
        try:
            small = await asyncio.to_thread(thumbnail, data, width)
        except (UnidentifiedImageError, OSError) as exc:
            raise ApiProblem(422, "not a picture", f"artifact {key!r} is not a picture to size down") from exc
        svc.thumbnails.put(digest, width, small)
    return Response(small, media_type="image/webp", headers=headers)

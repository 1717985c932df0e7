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
    if not await readable(svc, caller, key):
        raise ApiProblem(404, "not found", f"no artifact {key!r}")
    if width is not None and (kept := svc.thumbnails.get((key, width))) is not None:
        return _answer(request, kept[0], kept[1], "image/webp")
    data = await _read(svc, key)
    etag = f'"{hashlib.sha256(data).hexdigest()}{f"-w{width}" if width else ""}"'
    if width is None:
        return _answer(request, etag, data, mimetypes.guess_type(key)[0] or "application/octet-stream")
    try:
        small = await asyncio.to_thread(thumbnail, data, width)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ApiProblem(422, "not a picture", f"artifact {key!r} is not a picture to size down") from exc
    svc.thumbnails[(key, width)] = (etag, small)
    return _answer(request, etag, small, "image/webp")


async def _read(svc: Service, key: str) -> bytes:
    missing = ApiProblem(404, "not found", f"no artifact {key!r}")
    try:
        return await svc.store.read(key)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, ValueError) as exc:
        raise missing from exc
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchBucket"):
            raise missing from exc
        raise


def _answer(request: Request, etag: str, data: bytes, media_type: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": "private, max-age=300"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)

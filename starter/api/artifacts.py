"""Artifacts (`GET /v1/artifacts/{key}`: `routes/artifacts.py`): a run's pictures and files from the artifact
store (local folder or S3), with an ETag and caching headers; `?width=` sizes a picture down. Only the caller's
runs' artifacts, and the uploads it made."""

from __future__ import annotations

import hashlib
import mimetypes
from urllib.parse import quote

from fastapi import Request, Response
from minio.error import S3Error
from PIL import UnidentifiedImageError

from models.artifacts import REFERENCE_PREFIX
from starter.api.creates import uploaded
from starter.api.errors import Invalid, NotFound, Refused, Unavailable
from starter.api.service import Caller, Service, charge
from starter.api.thumbnails import WIDTHS, Busy, Made, TooLarge

RUN_PREFIXES = ("runs", "worlds")  # <prefix>/<run id>/…
INLINE = {"image/png", "image/jpeg", "image/webp", "image/gif", "application/json", "text/plain"}  # shown, not run


async def readable(svc: Service, caller: Caller, key: str) -> bool:
    parts = key.split("/")
    if len(parts) < 2 or any(p in ("", ".", "..") for p in parts):
        return False
    if parts[0] in RUN_PREFIXES:
        return caller.owns(parts[1])
    if parts[0] == REFERENCE_PREFIX:
        return not caller.keyed or await uploaded(svc, caller, key)
    return not caller.keyed and parts[0] != "api"


async def fetch(request: Request, svc: Service, caller: Caller, key: str, width: int | None) -> Response:
    """The artifact's bytes, or (`width`) the picture sized down, as the request may have them already."""
    if width is not None and width not in WIDTHS:
        raise Invalid("query.width", f"one of {', '.join(map(str, WIDTHS))}")
    if not await readable(svc, caller, key):
        raise NotFound("artifact", key)
    if width is None:
        return await _original(request, svc, key)
    if (kept := svc.thumbnails.get((key, width))) is None:
        charge(svc, caller)
        kept = await _thumbnail(svc, key, width)
    return _answer(request, kept[0], kept[1], "image/webp", key)


async def _original(request: Request, svc: Service, key: str) -> Response:
    """The artifact as stored: a conditional request that matches its kept ETag reads nothing; the others
    read it a few at a time (`Originals`)."""
    etag = svc.originals.etags.get(key)
    if etag is not None and request.headers.get("if-none-match") == etag:
        return _answer(request, etag, b"", _media_type(key), key)
    async with svc.originals.reads:
        data = await _read(svc, key)
        etag = svc.originals.etags[key] = f'"{hashlib.sha256(data).hexdigest()}"'
        return _answer(request, etag, data, _media_type(key), key)


async def _thumbnail(svc: Service, key: str, width: int) -> Made:
    try:
        return await svc.thumbnails.make(
            (key, width), lambda: _read(svc, key), lambda data: f'"{hashlib.sha256(data).hexdigest()}-w{width}"'
        )
    except Busy as exc:
        raise Unavailable("busy", "too many pictures are being sized down: retry", 1) from exc
    except TooLarge as exc:
        raise Refused("picture too large", f"artifact {key!r} is too large to size down: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise Refused("not a picture", f"artifact {key!r} is not a picture to size down") from exc


async def _read(svc: Service, key: str) -> bytes:
    missing = NotFound("artifact", key)
    try:
        return await svc.store.read(key)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, ValueError) as exc:
        raise missing from exc
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchBucket"):
            raise missing from exc
        raise


def _media_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _answer(request: Request, etag: str, data: bytes, media_type: str, key: str) -> Response:
    """Never a page on the API's origin: no artifact may run script or be sniffed into another type
    (`sandbox`, `nosniff`), and anything but a picture, JSON or plain text (a world's index.html, an SVG) is
    a download."""
    headers = {
        "ETag": etag,
        "Cache-Control": "private, max-age=300",
        "Content-Security-Policy": "sandbox",
        "X-Content-Type-Options": "nosniff",
    }
    if media_type not in INLINE:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(key.rsplit('/', 1)[-1], safe='')}"
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)

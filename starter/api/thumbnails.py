"""Pictures sized down for lists and cards (`GET /v1/artifacts/{key}?width=…`): WebP, kept in memory by key
and width (artifact keys are written once), up to a number of bytes, so a page of thumbnails is made once and
a repeat costs no read of the original."""

from __future__ import annotations

import io
from collections import OrderedDict

from PIL import Image

WIDTHS = (96, 192, 384, 768)  # the sizes asked for, so the cache holds few variants
KEPT_BYTES = 64 * 1024 * 1024


class Thumbnails:
    def __init__(self, kept_bytes: int = KEPT_BYTES) -> None:
        self.kept_bytes, self.size = kept_bytes, 0
        self._made: OrderedDict[tuple[str, int], tuple[str, bytes]] = OrderedDict()  # → (etag, WebP)

    def get(self, key: str, width: int) -> tuple[str, bytes] | None:
        found = self._made.get((key, width))
        if found is not None:
            self._made.move_to_end((key, width))
        return found

    def put(self, key: str, width: int, etag: str, data: bytes) -> None:
        if (old := self._made.pop((key, width), None)) is not None:
            self.size -= len(old[1])
        self._made[(key, width)] = (etag, data)
        self.size += len(data)
        while self.size > self.kept_bytes and self._made:
            self.size -= len(self._made.popitem(last=False)[1][1])


def thumbnail(data: bytes, width: int) -> bytes:
    """`data` (a picture) at most `width` pixels wide, aspect kept, as WebP (alpha kept)."""
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((width, width * 4))
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA")
        out = io.BytesIO()
        image.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()

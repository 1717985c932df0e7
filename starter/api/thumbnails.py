"""Pictures sized down for lists and cards (`GET /v1/artifacts/{key}?width=…`): WebP, kept in memory by the
original's digest so a page of thumbnails is made once."""

from __future__ import annotations

import io
from collections import OrderedDict

from PIL import Image

WIDTHS = (96, 192, 384, 768)  # the sizes asked for, so the cache holds few variants
KEPT = 2048  # thumbnails kept in memory (a few KB each)


class Thumbnails:
    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._made: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def get(self, digest: str, width: int) -> bytes | None:
        found = self._made.get((digest, width))
        if found is not None:
            self._made.move_to_end((digest, width))
        return found

    def put(self, digest: str, width: int, data: bytes) -> None:
        self._made[(digest, width)] = data
        while len(self._made) > self.kept:
            self._made.popitem(last=False)


def thumbnail(data: bytes, width: int) -> bytes:
    """`data` (a picture) at most `width` pixels wide, aspect kept, as WebP (alpha kept)."""
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((width, width * 4))
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA")
        out = io.BytesIO()
        image.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()

"""Pictures sized down for lists and cards (`GET /v1/artifacts/{key}?width=…`): WebP, kept in memory by key
and width (artifact keys are written once), up to a number of bytes, so a page of thumbnails is made once and
a repeat costs no read of the original."""

from __future__ import annotations

import io

from cachetools import LRUCache
from PIL import Image

WIDTHS = (96, 192, 384, 768)  # the sizes asked for, so the cache holds few variants
KEPT_BYTES = 64 * 1024 * 1024


class Thumbnails(LRUCache):
    """(artifact key, width) → (ETag, WebP), the least recently used forgotten first past `KEPT_BYTES`."""

    def __init__(self, kept_bytes: int = KEPT_BYTES) -> None:
        super().__init__(maxsize=kept_bytes, getsizeof=lambda made: len(made[1]))


def thumbnail(data: bytes, width: int) -> bytes:
    """`data` (a picture) at most `width` pixels wide, aspect kept, as WebP (alpha kept)."""
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((width, width * 4))
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA")
        out = io.BytesIO()
        image.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()

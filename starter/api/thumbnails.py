"""Pictures sized down for lists and cards (`GET /v1/artifacts/{key}?width=…`): WebP, kept in memory by key
and width (artifact keys are written once), up to a number of bytes, so a page of thumbnails is made once and
a repeat costs no read of the original.

Making one is bounded: a picture over the pixel cap is refused before it is decoded; a JPEG is decoded at
1/2–1/8 scale (`Image.draft`); Pillow decodes PNG, WebP and GIF whole, so those cost one picture's pixels
while they are reduced by an integer factor (band by band where there is alpha) before the final resample;
concurrent misses of one key and width wait for one decode; decodes run on a few threads of their own (never
the event loop's shared pool, which reads artifacts), one source picture per thread; and past a number of
decodes running or waiting, a miss is refused (`Busy`)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from cachetools import LRUCache
from PIL import Image

WIDTHS = (96, 192, 384, 768)  # the sizes asked for, so the cache holds few variants
KEPT_BYTES = 64 * 1024 * 1024
REDUCING_GAP = 2  # reduced by an integer factor to at least twice the target, then resampled (Image.thumbnail's)
BAND_ROWS = 256  # a picture with alpha is reduced this many rows at a time

Wanted = tuple[str, int]  # (artifact key, width)
Made = tuple[str, bytes]  # (ETag, WebP)


class TooLarge(ValueError):
    """A picture over the pixel cap: not decoded."""


class Busy(Exception):
    """As many thumbnails are being made or waiting as may be: come back shortly."""


class Thumbnails:
    """Kept thumbnails (least recently used forgotten first past `kept_bytes`) and the ones being made."""

    def __init__(self, workers: int, queue: int, max_pixels: int, kept_bytes: int = KEPT_BYTES) -> None:
        self.kept: LRUCache[Wanted, Made] = LRUCache(maxsize=kept_bytes, getsizeof=lambda made: len(made[1]))
        self.making: dict[Wanted, asyncio.Task[Made]] = {}
        self.decodes = 0  # pictures decoded so far: one per key and width that was missing
        self.queue = queue  # being made or waiting: `Busy` past this
        self.max_pixels = max_pixels
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="thumbnail")  # its threads start on use
        self._slots = asyncio.Semaphore(workers)

    def get(self, wanted: Wanted) -> Made | None:
        return self.kept.get(wanted)

    async def make(self, wanted: Wanted, read: Callable[[], Awaitable[bytes]], etag_of: Callable[[bytes], str]) -> Made:
        """The thumbnail of `wanted`, made once however many ask for it at the same time; `Busy` when `queue`
        others are being made or waiting. The making goes on for the others when one asker goes away."""
        if (kept := self.kept.get(wanted)) is not None:
            return kept
        if (task := self.making.get(wanted)) is None:
            if len(self.making) >= self.queue:
                raise Busy()
            task = asyncio.create_task(self._make(wanted, read, etag_of))
            task.add_done_callback(lambda done: self._forget(wanted, done))
            self.making[wanted] = task
        return await asyncio.shield(task)

    async def _make(
        self, wanted: Wanted, read: Callable[[], Awaitable[bytes]], etag_of: Callable[[bytes], str]
    ) -> Made:
        async with self._slots:  # the original is read only when a thread is free to decode it
            data = await read()
            self.decodes += 1
            loop = asyncio.get_running_loop()
            made = await loop.run_in_executor(self._pool, _made, data, wanted[1], self.max_pixels, etag_of)
        self.kept[wanted] = made
        return made

    def _forget(self, wanted: Wanted, task: asyncio.Task[Made]) -> None:
        self.making.pop(wanted, None)
        if not task.cancelled():
            task.exception()  # retrieved: every asker may have gone away


def _made(data: bytes, width: int, max_pixels: int, etag_of: Callable[[bytes], str]) -> Made:
    return etag_of(data), thumbnail(data, width, max_pixels)


def thumbnail(data: bytes, width: int, max_pixels: int) -> bytes:
    """`data` (a picture of at most `max_pixels`) at most `width` pixels wide and four times that high,
    aspect kept, as WebP (alpha kept)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > max_pixels:
                raise TooLarge(f"{image.width}x{image.height} pixels is more than {max_pixels:,}")
            scale = min(1.0, width / image.width, width * 4 / image.height)
            target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            # the exact target, so a JPEG's draft picks the smallest scale that still covers it
            image.draft(None, (target[0] * REDUCING_GAP, target[1] * REDUCING_GAP))
            small = _reduced(image, min(image.width // target[0], image.height // target[1]) // REDUCING_GAP)
            small.thumbnail((width, width * 4), reducing_gap=REDUCING_GAP)
            if small.mode not in ("RGB", "RGBA"):
                small = small.convert("RGBA")
            out = io.BytesIO()
            small.save(out, "WEBP", quality=80, method=4)
    except Image.DecompressionBombError as exc:
        raise TooLarge(str(exc)) from exc
    return out.getvalue()


def _reduced(image: Image.Image, factor: int) -> Image.Image:
    """`image` reduced by an integer factor (box average); one with alpha band by band, since Pillow reduces
    it premultiplied, through a whole second copy of the picture."""
    if factor < 2 or image.mode not in ("RGBA", "LA"):
        return image
    rows = factor * max(1, BAND_ROWS // factor)
    bands = [
        image.crop((0, top, image.width, min(top + rows, image.height))).reduce(factor)
        for top in range(0, image.height, rows)
    ]
    reduced = Image.new(image.mode, (bands[0].width, sum(band.height for band in bands)))
    for n, band in enumerate(bands):
        reduced.paste(band, (0, n * (rows // factor)))
    return reduced

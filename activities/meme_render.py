"""Classic meme rendering with Pillow: pictures into their boxes, text wrapped and shrunk into each panel.

Caption formats get bold white capitals with a black outline over the picture; panel formats get black
text on white beside their pictures. Text never leaves its panel's box: it is wrapped to the box's
width and the font shrinks until every line fits, and what still does not fit at the smallest size is
cut with an ellipsis.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps
from temporalio import activity

from activities.heartbeat import heartbeating
from kit.storage import ArtifactStore, load, run_key
from models.artifacts import ArtifactRef
from models.meme import FORMATS, Box, FormatSpec, RenderRequest

FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/Library/Fonts/Impact.ttf",
    "C:/Windows/Fonts/impact.ttf",
]
MIN_SIZE, MAX_SIZE = 12, 96
PADDING = 0.06  # of the box's smaller side, kept free around the text

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@cache
def font(size: int) -> Font:
    """A bold sans-serif font of this size: the first installed candidate, else Pillow's own."""
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size)


def pixels(box: Box, canvas: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = canvas
    return round(box[0] * width), round(box[1] * height), round(box[2] * width), round(box[3] * height)


def _width(text: str, face: Font, stroke: int) -> float:
    left, _, right, _ = face.getbbox(text, stroke_width=stroke)
    return right - left


def wrap(text: str, face: Font, stroke: int, max_width: float) -> list[str]:
    """Greedy word wrap; a word wider than a line is split by characters over several lines."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if _width(candidate, face, stroke) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while _width(word, face, stroke) > max_width and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and _width(word[:cut], face, stroke) > max_width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


def _stroke(size: int, outlined: bool) -> int:
    return max(2, size // 14) if outlined else 0


def fit(text: str, width: int, height: int, outlined: bool) -> tuple[Font, int, list[str], int]:
    """The largest font whose wrapped lines fit width × height: (font, stroke, lines, line height).

    Words are only broken, and text only cut, when nothing fits at the smallest size.
    """
    for size in range(min(MAX_SIZE, max(MIN_SIZE, height // 2)), MIN_SIZE - 1, -2):
        face, stroke = font(size), _stroke(size, outlined)
        if any(_width(word, face, stroke) > width for word in text.split()):
            continue  # shrink rather than break a word
        lines = wrap(text, face, stroke, width)
        line_height = _line_height(face, stroke)
        if len(lines) * line_height <= height:
            return face, stroke, lines, line_height
    face, stroke = font(MIN_SIZE), _stroke(MIN_SIZE, outlined)
    line_height = _line_height(face, stroke)
    lines = wrap(text, face, stroke, width)[: max(1, height // line_height)]
    while lines and _width(lines[-1] + "…", face, stroke) > width:
        lines[-1] = lines[-1][:-1]
    return face, stroke, [*lines[:-1], lines[-1] + "…"] if lines else [], line_height


def _line_height(face: Font, stroke: int) -> int:
    _, top, _, bottom = face.getbbox("ÁYgjq", stroke_width=stroke)
    return int(bottom - top) + 2


def draw_text(image: Image.Image, text: str, box: Box, outlined: bool) -> None:
    """Centre `text` in `box`: white outlined capitals, or plain black."""
    if not text.strip():
        return
    left, top, right, bottom = pixels(box, image.size)
    pad = round(min(right - left, bottom - top) * PADDING)
    left, top, right, bottom = left + pad, top + pad, right - pad, bottom - pad
    words = text.upper() if outlined else text
    face, stroke, lines, line_height = fit(words, right - left, bottom - top, outlined)
    draw = ImageDraw.Draw(image)
    y = top + (bottom - top - len(lines) * line_height) / 2
    for line in lines:
        x0, y0, x1, _ = face.getbbox(line, stroke_width=stroke)
        x = left + (right - left - (x1 - x0)) / 2 - x0
        fill, outline = ("white", "black") if outlined else ("black", None)
        draw.text((x, y - y0), line, font=face, fill=fill, stroke_width=stroke, stroke_fill=outline)
        y += line_height


def plain_background(seed: str, size: tuple[int, int]) -> Image.Image:
    """A calm two-colour gradient picked from the seed: the fallback when no picture could be made."""
    digest = hashlib.sha256(seed.encode()).digest()
    top = tuple(40 + b % 120 for b in digest[:3])
    bottom = tuple(40 + b % 120 for b in digest[3:6])
    gradient = Image.linear_gradient("L").resize(size)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), gradient)


def render(spec: FormatSpec, panels: list[str], scenes: list[bytes | None], seed: str) -> bytes:
    """The finished meme as PNG bytes."""
    canvas = Image.new("RGB", spec.canvas, "white")
    for index, (scene, data) in enumerate(zip(spec.scenes, scenes, strict=True)):
        left, top, right, bottom = pixels(scene.box, spec.canvas)
        size = (right - left, bottom - top)
        if data is None:
            picture = plain_background(f"{seed}/{index}", size)
        else:
            with Image.open(io.BytesIO(data)) as opened:
                picture = ImageOps.fit(opened.convert("RGB"), size)
        canvas.paste(picture, (left, top))
    if not spec.captions:
        draw = ImageDraw.Draw(canvas)
        for panel in spec.panels:
            left, top, right, bottom = pixels(panel.box, spec.canvas)
            draw.rectangle((left, top, right - 1, bottom - 1), fill="white")
        for scene in spec.scenes[1:]:
            y = pixels(scene.box, spec.canvas)[1]
            draw.line((0, y, spec.canvas[0], y), fill="black", width=3)
    for panel, text in zip(spec.panels, panels, strict=False):
        draw_text(canvas, text, panel.box, outlined=spec.captions)
    out = io.BytesIO()
    canvas.save(out, "PNG", optimize=False)
    return out.getvalue()


class RenderActivities:
    """The meme's overlay step, apart from the other meme activities so workflows (which call it by name)
    never import Pillow."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    @activity.defn(name="render_meme")
    async def render(self, request: RenderRequest) -> ArtifactRef:
        """Overlay the text on the pictures (plain backgrounds where there are none)."""
        scenes = [await load(self.store, ref) if ref else None for ref in request.scenes]
        spec = FORMATS[request.format]
        async with heartbeating("rendering"):
            data = await asyncio.to_thread(render, spec, request.panels, scenes, request.meme_id)
        return await self.store.put(run_key(request.meme_id, "meme.png"), data, "image/png")

"""Deterministic Pillow renderer: a prompt becomes a small illustrated scene.

Colour words set the palette (repeated words get more area), subjects are drawn as labelled
shapes, style words change saturation, contrast and detail, and the layout seed stays fixed
across refinements of one run so successive images read as edits of one picture.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from activities.providers.offline.hands import HANDS, Hand
from activities.providers.offline.vocabulary import BACKDROP, CELESTIAL, COLOURS, RGB, SceneSpec
from models.image import ImageOptions

PLAIN = HANDS["offline"]
SKIES: dict[str, tuple[RGB, RGB]] = {
    "day": ((96, 160, 230), (200, 226, 245)),
    "sunset": ((70, 40, 110), (250, 150, 70)),
    "dawn": ((120, 150, 210), (250, 200, 160)),
    "night": ((8, 10, 32), (40, 36, 90)),
}


def dimensions(size: str) -> tuple[int, int]:
    if size == "auto":
        return 1024, 1024
    width, height = size.split("x")
    return int(width), int(height)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (int(a[0] + (b[0] - a[0]) * t), int(a[1] + (b[1] - a[1]) * t), int(a[2] + (b[2] - a[2]) * t))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


class Canvas:
    """An RGBA image with the palette and random source of one render."""

    def __init__(self, width: int, height: int, palette: list[RGB], rng: random.Random) -> None:
        self.image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.image)
        self.w, self.h = width, height
        self.palette = palette
        self.rng = rng
        self.horizon = int(height * 0.66)

    def colour(self, index: int) -> RGB:
        return self.palette[index % len(self.palette)]

    def label(self, text: str, cx: int, y: int) -> None:
        font = _font(max(14, self.h // 40))
        box = self.draw.textbbox((0, 0), text, font=font)
        tw, th = box[2] - box[0], box[3] - box[1]
        pad = 6
        self.draw.rounded_rectangle(
            (cx - tw // 2 - pad, y, cx + tw // 2 + pad, y + th + 2 * pad), radius=6, fill=(255, 255, 255, 220)
        )
        self.draw.text((cx - tw // 2, y + pad - box[1]), text, fill=(20, 20, 28), font=font)


# --- subjects: each draws itself standing on (cx, base) with size s --------------------------------


def _tree(c: Canvas, cx: int, base: int, s: int, col: RGB) -> None:
    c.draw.rectangle((cx - s // 14, base - s // 2, cx + s // 14, base), fill=(96, 62, 36))
    for i in range(3):
        r = s // 3 - i * s // 14
        y = base - s // 2 - i * s // 5
        c.draw.ellipse((cx - r, y - r, cx + r, y + r), fill=_mix(col, (20, 80, 30), 0.3 + 0.15 * i))


def _house(c: Canvas, cx: int, base: int, s: int, col: RGB) -> None:
    c.draw.rectangle((cx - s // 2, base - s // 2, cx + s // 2, base), fill=col)
    c.draw.polygon(
        [(cx - s // 2 - 10, base - s // 2), (cx, base - s), (cx + s // 2 + 10, base - s // 2)],
        fill=_mix(col, (60, 20, 20), 0.5),
    )
    c.draw.rectangle((cx - s // 10, base - s // 4, cx + s // 10, base), fill=(70, 45, 30))
    c.draw.rectangle((cx + s // 5, base - 2 * s // 5, cx + 2 * s // 5, base - s // 4), fill=(255, 226, 140))


def _lighthouse(c: Canvas, cx: int, base: int, s: int, col: RGB) -> None:
    top = base - int(s * 1.5)
    c.draw.polygon(
        [(cx - s // 5, base), (cx - s // 8, top), (cx + s // 8, top), (cx + s // 5, base)],
        fill=(240, 240, 236),
    )
    for i in range(1, 4):
        y = base - i * (base - top) // 4
        c.draw.rectangle((cx - s // 6, y - s // 16, cx + s // 6, y + s // 16), fill=col)
    c.draw.rectangle((cx - s // 7, top - s // 6, cx + s // 7, top), fill=(255, 230, 120))
    c.draw.polygon(
        [(cx, top - s // 12), (cx + c.w // 3, top - s // 3), (cx + c.w // 3, top + s // 6)],
        fill=(255, 240, 170, 90),
    )
    c.draw.polygon([(cx - s // 6, top - s // 6), (cx, top - s // 3), (cx + s // 6, top - s // 6)], fill=col)


def _castle(c: Canvas, cx: int, base: int, s: int, col: RGB) -> None:
    c.draw.rectangle((cx - s // 2, base - s // 2, cx + s // 2, base), fill=col)
    for dx in (-s // 2, s // 2 - s // 5):
        c.draw.rectangle((cx + dx, base - s, cx + dx + s // 5, base), fill=_mix(col, (0, 0, 0), 0.15))
    for i in range(5):
        x = cx - s // 2 + i * s // 4
        c.draw.rectangle((x, base - s // 2 - s // 10, x + s // 10, base - s // 2), fill=col)
    c.draw.pieslice((cx - s // 8, base - s // 4, cx + s // 8, base + s // 8), 180, 360, fill=(40, 30, 30))


def _car(c: Canvas, cx: int, base: int, s: int, col: RGB) -> None:
    c.draw.rounded_rectangle((cx - s // 2, base - s // 3, cx + s // 2, base - s // 10), radius=s // 10, fill=col)
    c.draw.polygon(
        [
            (cx - s // 4, base - s // 3),
            (cx - s // 6, base - s // 2),
            (cx + s // 5, base - s // 2),
            (cx + s // 3, base - s // 3),
        ],
        fill=_mix(col, (255, 255, 255), 0.4),
    )
    for dx in (-s // 3, s // 3):
        c.draw.ellipse((cx + dx - s // 9, base - s // 6, cx + dx + s // 9, base + s // 18), fill=(30, 30, 34))


def _boat(c: Canvas, cx: int, base: int, s: int, col: RGB) -> None:
    c.draw.polygon(
        [
            (cx - s // 2, base - s // 6),
            (cx + s // 2, base - s // 6),
            (cx + s // 3, base),
            (cx - s // 3, base),
        ],
        fill=col,
    )
    c.draw.line((cx, base - s // 6, cx, base - s), fill=(90, 60, 40), width=max(2, s // 40))
    c.draw.polygon([(cx + 4, base - s), (cx + 4, base - s // 4), (cx + s // 3, base - s // 4)], fill=(250, 248, 240))


def _animal(c: Canvas, cx: int, base: int, s: int, col: RGB, ears: str) -> None:
    c.draw.ellipse((cx - s // 3, base - s // 2, cx + s // 3, base), fill=col)
    hx, hy, r = cx + s // 4, base - s // 2, s // 5
    c.draw.ellipse((hx - r, hy - r, hx + r, hy + r), fill=col)
    if ears == "pointed":
        for ex in (hx - r // 2, hx + r // 2):
            c.draw.polygon([(ex - r // 3, hy - r + 4), (ex, hy - 3 * r // 2), (ex + r // 3, hy - r + 4)], fill=col)
    else:
        c.draw.ellipse((hx + r // 2, hy - r // 2, hx + r + r // 2, hy + r // 2), fill=_mix(col, (0, 0, 0), 0.3))
    c.draw.ellipse((hx - 2, hy - 4, hx + 6, hy + 4), fill=(20, 20, 20))
    c.draw.line((cx - s // 3, base - s // 4, cx - s // 2, base - s // 2), fill=col, width=max(3, s // 20))


def _person(c: Canvas, cx: int, base: int, s: int, col: RGB) -> None:
    r = s // 8
    c.draw.ellipse((cx - r, base - s, cx + r, base - s + 2 * r), fill=(236, 196, 160))
    c.draw.polygon([(cx - s // 5, base - s // 3), (cx, base - s + 2 * r), (cx + s // 5, base - s // 3)], fill=col)
    c.draw.rectangle((cx - s // 10, base - s // 3, cx + s // 10, base), fill=_mix(col, (0, 0, 0), 0.4))


def _robot(c: Canvas, cx: int, base: int, s: int, col: RGB) -> None:
    c.draw.rectangle((cx - s // 4, base - 2 * s // 3, cx + s // 4, base - s // 6), fill=col)
    c.draw.rectangle((cx - s // 6, base - s, cx + s // 6, base - 2 * s // 3 - 6), fill=_mix(col, (255,) * 3, 0.3))
    for dx in (-s // 12, s // 12):
        c.draw.ellipse((cx + dx - 6, base - 5 * s // 6 - 6, cx + dx + 6, base - 5 * s // 6 + 6), fill=(60, 240, 255))
    for dx in (-s // 6, s // 12):
        c.draw.rectangle((cx + dx, base - s // 6, cx + dx + s // 12, base), fill=(70, 70, 80))


def _jewel(c: Canvas, cx: int, base: int, s: int, col: RGB) -> None:
    r = s // 3
    cy = base - r - s // 10
    c.draw.ellipse((cx - r, cy - r // 2, cx + r, cy + r), outline=(212, 175, 55), width=max(4, s // 14))
    g = s // 6
    c.draw.polygon(
        [
            (cx, cy - r // 2 - 2 * g),
            (cx + g, cy - r // 2 - g),
            (cx, cy - r // 2 + 4),
            (cx - g, cy - r // 2 - g),
        ],
        fill=col,
    )
    c.draw.line(
        (cx - g // 2, cy - r // 2 - g - g // 2, cx + g // 3, cy - r // 2 - 5 * g // 3),
        fill=(255, 255, 255),
        width=3,
    )


def _flower(c: Canvas, cx: int, base: int, s: int, col: RGB) -> None:
    c.draw.line((cx, base, cx, base - s // 2), fill=(40, 130, 50), width=max(3, s // 25))
    cy, r = base - s // 2, s // 8
    for k in range(6):
        a = k * math.pi / 3
        px, py = cx + int(math.cos(a) * r), cy + int(math.sin(a) * r)
        c.draw.ellipse((px - r, py - r, px + r, py + r), fill=col)
    c.draw.ellipse((cx - r // 2, cy - r // 2, cx + r // 2, cy + r // 2), fill=(250, 210, 60))


def _bird(c: Canvas, cx: int, base: int, s: int, col: RGB) -> None:
    y = base - s
    for dx in (0, s // 3):
        c.draw.arc((cx + dx - s // 6, y, cx + dx, y + s // 8), 200, 340, fill=col, width=max(3, s // 30))
        c.draw.arc((cx + dx, y, cx + dx + s // 6, y + s // 8), 200, 340, fill=col, width=max(3, s // 30))


def _fish(c: Canvas, cx: int, base: int, s: int, col: RGB) -> None:
    cy = base - s // 4
    c.draw.ellipse((cx - s // 3, cy - s // 7, cx + s // 6, cy + s // 7), fill=col)
    c.draw.polygon([(cx + s // 8, cy), (cx + s // 3, cy - s // 8), (cx + s // 3, cy + s // 8)], fill=col)
    c.draw.ellipse((cx - s // 4, cy - 5, cx - s // 4 + 10, cy + 5), fill=(15, 15, 15))


def _emblem(c: Canvas, cx: int, base: int, s: int, col: RGB) -> None:
    r = s // 2
    cy = base - r
    c.draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=col)
    c.draw.regular_polygon((cx, cy, r * 2 // 3), 4, rotation=45, fill=_mix(col, (255, 255, 255), 0.5))


DRAWERS: dict[str, Callable[[Canvas, int, int, int, RGB], None]] = {
    "tree": _tree,
    "house": _house,
    "lighthouse": _lighthouse,
    "castle": _castle,
    "car": _car,
    "boat": _boat,
    "cat": lambda c, x, b, s, col: _animal(c, x, b, s, col, "pointed"),
    "dog": lambda c, x, b, s, col: _animal(c, x, b, s, col, "floppy"),
    "person": _person,
    "robot": _robot,
    "jewel": _jewel,
    "flower": _flower,
    "bird": _bird,
    "fish": _fish,
    "emblem": _emblem,
}


# --- layers ------------------------------------------------------------------------------------


def _sky(c: Canvas, spec: SceneSpec) -> None:
    top, bottom = SKIES[spec.light]
    named = [COLOURS[n] for n in spec.requested_colours[:2]]
    if named:
        top = _mix(top, named[-1], 0.45)
        bottom = _mix(bottom, named[0], 0.55)
    for y in range(c.horizon):
        c.draw.line((0, y, c.w, y), fill=_mix(top, bottom, y / max(1, c.horizon)))


def _celestial(c: Canvas, spec: SceneSpec, kinds: set[str]) -> None:
    if "stars" in kinds or spec.light == "night":
        for _ in range(60):
            x, y = c.rng.randrange(c.w), c.rng.randrange(c.horizon)
            c.draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=(255, 255, 230))
    orb = (
        "moon" if "moon" in kinds or spec.light == "night" else "sun" if ("sun" in kinds or spec.light != "day") else ""
    )
    if orb or "sun" in kinds:
        r = c.h // 12
        x, y = int(c.w * (0.25 + 0.5 * c.rng.random())), int(c.horizon * 0.35)
        colour = (245, 245, 225) if orb == "moon" else (255, 200, 90)
        c.draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    if "cloud" in kinds:
        for _ in range(3):
            x, y = c.rng.randrange(c.w), c.rng.randrange(c.horizon // 2)
            for k in range(3):
                c.draw.ellipse((x + k * 40 - 50, y - 25, x + k * 40 + 30, y + 25), fill=(250, 250, 252, 230))


def _backdrop(c: Canvas, kinds: set[str], colour: RGB) -> None:
    if "mountain" in kinds:
        for i in range(3):
            x = int(c.w * (0.1 + 0.35 * i)) + c.rng.randrange(-40, 40)
            peak = c.horizon - c.rng.randrange(c.h // 5, c.h // 3)
            c.draw.polygon(
                [(x - c.w // 4, c.horizon), (x, peak), (x + c.w // 4, c.horizon)],
                fill=_mix(colour, (70, 70, 90), 0.5 + 0.1 * i),
            )
            c.draw.polygon([(x - 30, peak + 40), (x, peak), (x + 30, peak + 40)], fill=(245, 245, 250))
    if "city" in kinds:
        x = 0
        while x < c.w:
            bw, bh = c.rng.randrange(40, 110), c.rng.randrange(c.h // 8, c.h // 3)
            c.draw.rectangle((x, c.horizon - bh, x + bw, c.horizon), fill=_mix(colour, (25, 25, 40), 0.6))
            for wy in range(c.horizon - bh + 10, c.horizon - 10, 22):
                for wx in range(x + 8, x + bw - 8, 18):
                    if c.rng.random() < 0.5:
                        c.draw.rectangle((wx, wy, wx + 7, wy + 10), fill=(255, 220, 120))
            x += bw + c.rng.randrange(2, 12)


def _ground(c: Canvas, water: bool, colour: RGB, transparent: bool) -> None:
    if transparent:
        c.draw.ellipse((c.w // 10, c.horizon - c.h // 14, c.w - c.w // 10, c.h - c.h // 12), fill=colour)
        return
    base = colour if water else _mix(colour, (80, 120, 60), 0.5)
    for y in range(c.horizon, c.h):
        c.draw.line((0, y, c.w, y), fill=_mix(base, (0, 0, 0), 0.45 * (y - c.horizon) / (c.h - c.horizon)))
    if water:
        c.draw.polygon([(0, c.horizon), (c.w // 3, c.horizon - 30), (c.w // 2, c.horizon)], fill=(70, 62, 58))


def _accents(c: Canvas, spec: SceneSpec, extra: list[RGB]) -> None:
    """Extra weight on a colour (a repeated colour word) becomes glowing accents of it."""
    for name, count in spec.colours.items():
        for _ in range(max(0, count - 1) * 6):
            x, y, r = c.rng.randrange(c.w), c.rng.randrange(c.h), c.rng.randrange(c.h // 30, c.h // 10)
            c.draw.ellipse((x - r, y - r, x + r, y + r), fill=(*COLOURS[name], 200))
    for colour in extra:
        y = c.rng.randrange(c.h // 6, c.horizon)
        c.draw.rectangle((0, y, c.w, y + c.h // 40), fill=(*colour, 170))


def _texture(c: Canvas, level: int, water: bool) -> None:
    for _ in range(40 + 160 * level):
        x, y = c.rng.randrange(c.w), c.rng.randrange(c.horizon, c.h)
        length = c.rng.randrange(6, 24)
        shade = (255, 255, 255, 120) if water else (20, 40, 20, 140)
        c.draw.line((x, y, x + length, y + (0 if water else -length // 2)), fill=shade, width=2)
    for _ in range(20 * level):
        x, y = c.rng.randrange(c.w), c.rng.randrange(c.horizon)
        c.draw.point((x, y), fill=(255, 255, 255, 160))


def render(
    spec: SceneSpec, options: ImageOptions, seed: int, extra: list[RGB], caption: str, hand: Hand = PLAIN
) -> bytes:
    """The scene as encoded bytes, in the offline model's `hand`; `low` quality draws at half size and scales
    up (4x less work)."""
    width, height = dimensions(options.size)
    if options.quality == "low":
        image = draw_scene(spec, options, seed, extra, caption, width // 2, height // 2, hand)
        return encode(image.resize((width, height), Image.Resampling.BILINEAR), options)
    return encode(draw_scene(spec, options, seed, extra, caption, width, height, hand), options)


def draw_scene(
    spec: SceneSpec,
    options: ImageOptions,
    seed: int,
    extra: list[RGB],
    caption: str,
    width: int,
    height: int,
    hand: Hand = PLAIN,
) -> Image.Image:
    spec = hand.read(spec)
    palette = [COLOURS[n] for n in spec.requested_colours] or [(220, 120, 60), (60, 120, 200)]
    c = Canvas(width, height, palette, random.Random(seed))
    transparent = options.background == "transparent" and options.format != "jpeg"
    kinds = {kind for _, kind in spec.subjects}
    water = "water" in kinds
    if not transparent:
        _sky(c, spec)
        _celestial(c, spec, kinds)
        _backdrop(c, kinds, c.colour(1))
    _ground(c, water, c.colour(2) if len(palette) > 2 else c.colour(0), transparent)
    _texture(c, spec.style["detail"], water)
    _accents(c, spec, extra)
    standing = [(word, kind) for word, kind in spec.subjects if kind not in CELESTIAL | BACKDROP | {"water"}]
    if not standing and (transparent or not spec.subjects):
        standing = [(spec.subjects[0][0] if spec.subjects else "subject", "emblem")]
    size = int(height * (0.24 + 0.06 * min(spec.style["bold"], 3)))
    for i, (word, kind) in enumerate(standing[:5]):
        cx = int(width * (i + 1) / (len(standing[:5]) + 1)) + c.rng.randrange(-width // 30, width // 30)
        base = c.horizon + height // 10
        DRAWERS[kind](c, cx, base, size, c.colour(i))
        c.label(word, cx, base + 8)
    image = hand.finish(_finish(c.image, spec))
    _stamp(image, caption)
    return image


def _finish(image: Image.Image, spec: SceneSpec) -> Image.Image:
    alpha = image.getchannel("A")
    rgb = image.convert("RGB")
    rgb = ImageEnhance.Color(rgb).enhance(min(1.9, 0.8 + 0.3 * spec.style["vivid"]))
    rgb = ImageEnhance.Contrast(rgb).enhance(min(1.8, 0.85 + 0.25 * spec.style["contrast"]))
    if spec.style["detail"]:
        rgb = rgb.filter(ImageFilter.UnsharpMask(radius=2, percent=60 * spec.style["detail"], threshold=2))
    rgb.putalpha(alpha)
    return rgb


OFFLINE_STAMP = "offline"


def _stamp(image: Image.Image, caption: str) -> None:
    """Every offline image says it is one, with the prompt it was drawn from; not which offline model drew it
    (its hand shows that), so a blind vote between two of them names neither."""
    draw = ImageDraw.Draw(image)
    font = _font(max(12, image.height // 48))
    width = draw.textbbox((0, 0), OFFLINE_STAMP, font=font)[2] + 20
    draw.rounded_rectangle((10, 10, 10 + max(108, width), 10 + image.height // 30), radius=8, fill=(0, 0, 0, 170))
    draw.text((20, 12), OFFLINE_STAMP, fill=(255, 255, 255, 255), font=font)
    text = caption if len(caption) <= 90 else caption[:87] + "..."
    draw.text(
        (14, image.height - image.height // 32),
        text,
        fill=(255, 255, 255, 230),
        font=_font(max(10, image.height // 64)),
    )


def encode(image: Image.Image, options: ImageOptions) -> bytes:
    out = io.BytesIO()
    if options.format == "jpeg":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        background.save(out, "JPEG", quality=90)
    elif options.format == "webp":
        image.save(out, "WEBP", quality=90)
    else:
        image.save(out, "PNG", optimize=False)
    return out.getvalue()

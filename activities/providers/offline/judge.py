"""Offline evaluation: measurable properties of the pixels, compared with the prompt.

Four measures, each 0..1: palette (coverage of every colour the prompt names), contrast
(luminance spread), detail (edge density) and vividness (mean saturation). Size and
transparency that differ from what was asked cost points. Feedback names the weakest
measures with a concrete fix, which the offline prompter understands.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageFilter, ImageStat

from activities.providers.offline.vocabulary import COLOURS, parse
from models.image import Evaluation

PALETTE_TARGET = 0.07  # share of the picture each named colour should cover
CONTRAST_TARGET = 68.0
DETAIL_TARGET = 22.0
VIVID_TARGET = 135.0
WEIGHTS = {"palette": 0.4, "contrast": 0.2, "detail": 0.2, "vivid": 0.2}


@dataclass(frozen=True)
class Measures:
    palette: float
    coverage: dict[str, float]
    contrast: float
    detail: float
    vivid: float


def _opaque_pixels(image: Image.Image) -> list[tuple[int, int, int]]:
    small = image.convert("RGBA").resize((96, 96))
    return [(r, g, b) for r, g, b, a in small.get_flattened_data() if a > 128]


def measure(image: Image.Image, colours: list[str]) -> Measures:
    pixels = _opaque_pixels(image) or [(0, 0, 0)]
    coverage = {}
    for name in colours:
        cr, cg, cb = COLOURS[name]
        near = sum(1 for r, g, b in pixels if (r - cr) ** 2 + (g - cg) ** 2 + (b - cb) ** 2 < 70**2)
        coverage[name] = near / len(pixels)
    palette = sum(min(1.0, c / PALETTE_TARGET) for c in coverage.values()) / len(coverage) if coverage else 1.0
    flat = Image.new("RGB", (len(pixels), 1))
    flat.putdata(pixels)
    contrast = ImageStat.Stat(flat.convert("L")).stddev[0]
    vivid = ImageStat.Stat(flat.convert("HSV")).mean[1]
    edges = image.convert("L").resize((256, 256)).filter(ImageFilter.FIND_EDGES)
    detail = ImageStat.Stat(edges).mean[0]
    return Measures(
        palette=palette,
        coverage=coverage,
        contrast=min(1.0, contrast / CONTRAST_TARGET),
        detail=min(1.0, detail / DETAIL_TARGET),
        vivid=min(1.0, vivid / VIVID_TARGET),
    )


def evaluate(
    data: bytes, prompt: str, expected_size: tuple[int, int] | None = None, transparent: bool = False
) -> Evaluation:
    spec = parse(prompt)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        m = measure(image, spec.requested_colours)
        size_ok = expected_size is None or image.size == expected_size
        has_alpha = image.mode in {"RGBA", "LA"} and image.getchannel("A").getextrema()[0] < 255
    score = 100 * sum(WEIGHTS[k] * getattr(m, k) for k in WEIGHTS)
    notes: list[tuple[float, str]] = []
    for name, share in m.coverage.items():
        if share < PALETTE_TARGET:
            notes.append((share / PALETTE_TARGET, f"More {name} is needed ({share:.0%} of the image)."))
    if m.contrast < 0.95:
        notes.append((m.contrast, "Contrast is low: use high contrast, dramatic lighting."))
    if m.detail < 0.95:
        notes.append((m.detail, "Few fine details: add intricate detail and texture."))
    if m.vivid < 0.95:
        notes.append((m.vivid, "Colours are dull: make them vivid and saturated."))
    if not size_ok:
        score -= 20
        notes.append((0.0, f"Wrong size {image.size[0]}x{image.size[1]}."))
    if transparent and not has_alpha:
        score -= 10
        notes.append((0.0, "Background should be transparent."))
    notes.sort(key=lambda n: n[0])
    summary = "[offline] " + ", ".join(f"{k} {getattr(m, k):.2f}" for k in WEIGHTS) + "."
    advice = " ".join(text for _, text in notes[:3]) or "Strong match for the prompt; nothing to fix."
    return Evaluation(score=max(0, min(100, round(score))), feedback=f"{advice} {summary}")

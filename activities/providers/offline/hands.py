"""The offline models' hands: one renderer, three visibly different painters, so runs and experiments that
choose between `offline`, `offline-vivid` and `offline-sketch` get pictures (and scores) that differ.

- `offline`: the prompt as written.
- `offline-vivid`: a saturated palette, more contrast and fine detail than the prompt asks for.
- `offline-sketch`: grey pencil lines of the prompt's first subject only: no colour, less of the prompt.

The offline judge measures palette, contrast, detail and saturation against the prompt (`judge.py`), so on the
same prompt vivid scores above offline, and sketch well below both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from PIL import Image, ImageFilter, ImageOps

from activities.providers.offline.vocabulary import SceneSpec


@dataclass(frozen=True)
class Hand:
    """How one offline model draws: style it adds to every prompt's, how many of the prompt's subjects it
    keeps (its fidelity), and whether it draws in grey lines."""

    name: str
    boost: dict[str, int] = field(default_factory=dict)  # style word → extra weight (vocabulary.STYLE_WORDS)
    subjects: int | None = None  # None: every one
    sketch: bool = False

    def read(self, spec: SceneSpec) -> SceneSpec:
        """The scene as this hand sees the prompt's."""
        if not self.boost and self.subjects is None:
            return spec
        style = spec.style.copy()
        style.update(self.boost)
        return replace(spec, style=style, subjects=spec.subjects[: self.subjects])

    def finish(self, image: Image.Image) -> Image.Image:
        """The drawn picture as this hand leaves it (a sketch: dark lines on paper, the alpha kept)."""
        if not self.sketch:
            return image
        alpha = image.getchannel("A")
        lines = ImageOps.invert(image.convert("L").filter(ImageFilter.FIND_EDGES))
        paper = ImageOps.autocontrast(lines).point(lambda v: 255 if v > 200 else v)
        sketch = paper.convert("RGBA")
        sketch.putalpha(alpha)
        return sketch


HANDS: dict[str, Hand] = {
    hand.name: hand
    for hand in (
        Hand("offline"),
        Hand("offline-vivid", boost={"vivid": 3, "contrast": 2, "detail": 3}),
        Hand("offline-sketch", subjects=1, sketch=True),
    )
}


def hand_of(model: str) -> Hand:
    """The hand of an offline model by its name (a catalog entry's `model`); any other name draws plainly."""
    return HANDS.get(model, HANDS["offline"])

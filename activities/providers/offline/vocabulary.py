"""Words the offline provider understands: colours, subjects, style and light."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

RGB = tuple[int, int, int]

COLOURS: dict[str, RGB] = {
    "red": (214, 40, 40),
    "crimson": (170, 20, 50),
    "ruby": (190, 16, 70),
    "orange": (245, 135, 30),
    "amber": (255, 176, 40),
    "yellow": (248, 214, 50),
    "gold": (212, 168, 50),
    "green": (52, 160, 72),
    "emerald": (16, 150, 100),
    "teal": (0, 128, 128),
    "cyan": (40, 200, 225),
    "turquoise": (50, 215, 200),
    "blue": (40, 90, 215),
    "navy": (22, 32, 96),
    "sapphire": (20, 70, 180),
    "azure": (40, 140, 250),
    "purple": (128, 56, 176),
    "violet": (150, 90, 220),
    "lavender": (186, 160, 226),
    "pink": (240, 120, 170),
    "magenta": (215, 40, 175),
    "white": (244, 244, 240),
    "black": (18, 18, 24),
    "grey": (128, 128, 132),
    "silver": (190, 192, 200),
    "brown": (118, 78, 42),
    "beige": (224, 208, 176),
}
SYNONYMS = {"gray": "grey", "golden": "gold", "reddish": "red", "bluish": "blue", "greenish": "green"}

# subject word -> drawing kind; plurals are folded by `_singular`.
SUBJECTS: dict[str, str] = {
    "sun": "sun",
    "moon": "moon",
    "star": "stars",
    "cloud": "cloud",
    "mountain": "mountain",
    "hill": "mountain",
    "volcano": "mountain",
    "city": "city",
    "skyline": "city",
    "building": "city",
    "skyscraper": "city",
    "tower": "city",
    "sea": "water",
    "ocean": "water",
    "lake": "water",
    "river": "water",
    "coast": "water",
    "beach": "water",
    "wave": "water",
    "harbor": "water",
    "harbour": "water",
    "tree": "tree",
    "forest": "tree",
    "palm": "tree",
    "house": "house",
    "cabin": "house",
    "cottage": "house",
    "home": "house",
    "lighthouse": "lighthouse",
    "castle": "castle",
    "car": "car",
    "truck": "car",
    "boat": "boat",
    "ship": "boat",
    "sailboat": "boat",
    "yacht": "boat",
    "cat": "cat",
    "kitten": "cat",
    "dog": "dog",
    "puppy": "dog",
    "fox": "dog",
    "bird": "bird",
    "eagle": "bird",
    "owl": "bird",
    "fish": "fish",
    "flower": "flower",
    "rose": "flower",
    "person": "person",
    "woman": "person",
    "man": "person",
    "girl": "person",
    "boy": "person",
    "people": "person",
    "character": "person",
    "astronaut": "person",
    "knight": "person",
    "robot": "robot",
    "android": "robot",
    "ring": "jewel",
    "diamond": "jewel",
    "jewel": "jewel",
    "gem": "jewel",
    "necklace": "jewel",
    "earring": "jewel",
    "crystal": "jewel",
}
CELESTIAL = {"sun", "moon", "stars", "cloud"}
BACKDROP = {"mountain", "city"}

STYLE_WORDS: dict[str, tuple[str, ...]] = {
    "vivid": ("vivid", "vibrant", "saturated", "colorful", "colourful", "rich colours", "rich colors"),
    "contrast": ("high contrast", "dramatic", "contrast", "strong shadows", "chiaroscuro"),
    "detail": ("detailed", "intricate", "sharp", "texture", "fine detail", "crisp"),
    "bold": ("close-up", "centered", "centred", "bold composition", "large", "prominent"),
}
LIGHT_WORDS: dict[str, tuple[str, ...]] = {
    "night": ("night", "midnight", "neon", "starry", "dark", "moonlit"),
    "sunset": ("sunset", "dusk", "golden hour", "twilight", "evening"),
    "dawn": ("dawn", "sunrise", "morning"),
}
_STOP = """
a an the of in on at with and or to for from by into under over near its it is are be this that very more
most some few style photo image picture render scene view shot lighting light background make use add show
high low soft calm quiet rocky run runs ran ruled made built filled full living lives where who
which their there then than has have had will would about world
"""
STOPWORDS = frozenset(_STOP.split())


@dataclass
class SceneSpec:
    """What a prompt asks for, as the renderer and the judge read it."""

    colours: Counter[str] = field(default_factory=Counter)
    subjects: list[tuple[str, str]] = field(default_factory=list)  # (word as written, kind)
    style: Counter[str] = field(default_factory=Counter)
    light: str = "day"

    @property
    def requested_colours(self) -> list[str]:
        return [name for name, _ in self.colours.most_common()]


def _singular(word: str) -> str:
    if word in SUBJECTS:
        return word
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", "")):
        if word.endswith(suffix) and word[: -len(suffix)] + repl in SUBJECTS:
            return word[: -len(suffix)] + repl
    return word


def words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z'-]*", text.lower())


def parse(prompt: str) -> SceneSpec:
    spec = SceneSpec()
    text = prompt.lower()
    seen: set[str] = set()
    for raw in words(text):
        word = SYNONYMS.get(raw, raw)
        if word in COLOURS:
            spec.colours[word] += 1
            continue
        noun = _singular(word)
        if noun in SUBJECTS and SUBJECTS[noun] not in seen:
            seen.add(SUBJECTS[noun])
            spec.subjects.append((noun, SUBJECTS[noun]))
    for style, phrases in STYLE_WORDS.items():
        spec.style[style] = sum(len(re.findall(rf"\b{re.escape(p)}\b", text)) for p in phrases)
    for light, phrases in LIGHT_WORDS.items():
        if any(re.search(rf"\b{re.escape(p)}\b", text) for p in phrases):
            spec.light = light
            break
    if not spec.subjects:
        nouns = [w for w in words(text) if w not in STOPWORDS and w not in COLOURS and len(w) > 2]
        spec.subjects.append((nouns[0] if nouns else "subject", "emblem"))
    return spec

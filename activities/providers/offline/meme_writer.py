"""Offline memes: a format picked from the topic's words, panel texts from templates, a rule-based judge.

Each rewrite moves to a punchier template (fewer words, a twist at the end), and the judge rewards
exactly that, so the refinement loop has something real to climb. Blocked words named in the
feedback are left out of the next version.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from pydantic import BaseModel

from models.meme import (
    FORMATS,
    FormatChoice,
    FormatRequest,
    JudgeRequest,
    MemeFormat,
    MemeJudgement,
    MemeText,
    TextRequest,
)

CUES: list[tuple[MemeFormat, tuple[str, ...]]] = [
    (MemeFormat.TWO_BUTTONS, ("vs", "versus", "or", "choose", "choice", "decide", "dilemma", "either")),
    (MemeFormat.DISTRACTED, ("new", "tempt", "distract", "shiny", "instead", "procrastinat", "scroll")),
    (MemeFormat.CHANGE_MY_MIND, ("opinion", "overrated", "underrated", "best", "worst", "should")),
    (MemeFormat.EXPANDING_BRAIN, ("level", "evolution", "galaxy", "enlighten", "stages", "ways", "smart")),
    (MemeFormat.DRAKE, ("prefer", "better", "rather", "hate", "love", "than")),
]

# Three takes per format, each punchier than the one before; {t} is the topic, {T} the same capitalised.
TAKES: dict[MemeFormat, list[list[str]]] = {
    MemeFormat.DRAKE: [
        ["Doing everything the usual way instead of {t}", "Actually giving {t} a real try and seeing how it goes"],
        ["Avoiding {t}", "{T} with snacks within reach"],
        ["Pretending to hate {t}", "{T}. In pajamas. Forever."],
    ],
    MemeFormat.DISTRACTED: [
        ["something new related to {t}", "me, a person who really means well", "the plans I already made"],
        ["{t}", "me", "my actual responsibilities"],
        ["{t} at 2 a.m.", "me", "sleep. Remember sleep?"],
    ],
    MemeFormat.TWO_BUTTONS: [
        ["Take {t} seriously", "Ignore {t} completely", "Someone who has to decide about {t} today"],
        ["Talk about {t}", "Actually do {t}", "Me before coffee"],
        ["Master {t}", "Complain about {t}", "Me. Every Monday."],
    ],
    MemeFormat.CHANGE_MY_MIND: [
        ["I think {t} is probably a lot better than most people say it is"],
        ["{T} is underrated"],
        ["{T} fixes everything. Everything."],
    ],
    MemeFormat.EXPANDING_BRAIN: [
        ["Hearing about {t}", "Reading about {t}", "Explaining {t} to others", "Becoming {t} itself"],
        ["Trying {t}", "Loving {t}", "Teaching {t}", "Ascending through {t}"],
        ["{T}", "{T}, but on purpose", "{T} as a lifestyle", "{T}. As a religion."],
    ],
}
BLOCKED = re.compile(r"blocked words: ([^.;\n]+)")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def choose_format(request: FormatRequest) -> FormatChoice:
    words = _words(f"{request.topic} {request.style}")
    for fmt, cues in CUES:
        hit = next((w for w in words for cue in cues if w == cue or (len(cue) > 4 and w.startswith(cue))), None)
        if hit:
            reason = f"'{hit}' in the topic suggests {FORMATS[fmt].description}"
            return FormatChoice(format=fmt, reason=reason)
    fmt = list(MemeFormat)[int(hashlib.sha256(request.topic.encode()).hexdigest(), 16) % len(MemeFormat)]
    return FormatChoice(format=fmt, reason=f"no strong cue in the topic; {fmt.value} fits {FORMATS[fmt].description}")


def write_text(request: TextRequest) -> MemeText:
    takes = TAKES[request.format]
    take = takes[min(request.attempt, len(takes) - 1)]
    topic = request.topic.strip().rstrip(".!?")
    panels = [p.format(t=topic.lower(), T=topic[:1].upper() + topic[1:]) for p in take]
    blocked = {w.strip().lower() for w in request.avoid}
    if match := BLOCKED.search(request.feedback):
        blocked |= {w.strip().lower() for w in match.group(1).split(",")}
    if blocked:
        panels = [" ".join(w for w in p.split() if w.lower().strip(".,!?") not in blocked) or "…" for p in panels]
    scene = f"{request.style} " if request.style else ""
    return MemeText(panels=panels, scene=f"{scene}everyday scene about {topic.lower()}".strip())


def judge(request: JudgeRequest) -> MemeJudgement:
    """Short panels, a twist at the end and the topic in the text make a better meme."""
    spec = FORMATS[request.format]
    counts = [len(p.split()) for p in request.panels]
    brevity = sum(1.0 if n <= 5 else max(0.0, 1 - (n - 5) / 8) for n in counts) / len(counts)
    twist = 1.0 if re.search(r"[.!?]\s*\S", request.panels[-1]) or request.panels[-1].endswith((".", "!", "?")) else 0.0
    topic_words = {w for w in _words(request.topic) if len(w) > 3}
    on_topic = 1.0 if topic_words & set(_words(" ".join(request.panels))) else 0.0
    fits = [
        min(1.0, panel.max_chars / max(1, len(text))) for panel, text in zip(spec.panels, request.panels, strict=False)
    ]
    clarity = round(sum(fits) / len(fits) * (0.6 + 0.4 * brevity), 3)
    humor = round(0.3 + 0.3 * brevity + 0.25 * twist + 0.15 * on_topic, 3)
    advice = []
    if brevity < 0.9:
        advice.append("the panels are wordy: cut each to a few words")
    if not twist:
        advice.append("no punchline: end the last panel on a twist")
    if not on_topic:
        advice.append("say the topic outright")
    feedback = "; ".join(advice) or "tight and on topic; keep it"
    return MemeJudgement(humor=min(humor, 1.0), clarity=min(clarity, 1.0), feedback=feedback)


WRITERS: dict[type[BaseModel], Callable[..., BaseModel]] = {
    FormatChoice: choose_format,
    MemeText: write_text,
    MemeJudgement: judge,
}

"""The meme pipeline's contracts: formats and their panels, the job, model outputs, phases and the result."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from models.artifacts import ArtifactRef
from models.catalog import ModelChoice
from models.image import ImageOptions
from models.text import ModelOutput, Prompt
from models.usage import CostLimit, PaidRequest, Spend, Usage

Box = tuple[float, float, float, float]  # left, top, right, bottom as fractions of the canvas


class MemeFormat(StrEnum):
    DRAKE = "drake"
    DISTRACTED = "distracted"
    TWO_BUTTONS = "two-buttons"
    CHANGE_MY_MIND = "change-my-mind"
    EXPANDING_BRAIN = "expanding-brain"


class Panel(BaseModel):
    name: str  # what the text in this panel stands for
    box: Box  # where the text goes
    max_chars: int


class Scene(BaseModel):
    """One generated picture and where it goes on the canvas."""

    subject: str  # what it shows, for the image prompt
    box: Box


class FormatSpec(BaseModel):
    format: MemeFormat
    description: str  # when the format fits, for choosing one
    canvas: tuple[int, int]
    panels: list[Panel]
    scenes: list[Scene]
    captions: bool  # True: white outlined caps over the picture; False: black text on white panels


def _rows(n: int) -> list[Box]:
    return [(0.0, i / n, 0.5, (i + 1) / n) for i in range(n)]


FORMATS: dict[MemeFormat, FormatSpec] = {
    spec.format: spec
    for spec in [
        FormatSpec(
            format=MemeFormat.DRAKE,
            description="rejecting one thing and preferring another",
            canvas=(1024, 1024),
            panels=[
                Panel(name="rejected", box=(0.53, 0.03, 0.97, 0.47), max_chars=90),
                Panel(name="preferred", box=(0.53, 0.53, 0.97, 0.97), max_chars=90),
            ],
            scenes=[
                Scene(subject="a person turning away with a raised hand, displeased", box=_rows(2)[0]),
                Scene(subject="the same person pointing and smiling approvingly", box=_rows(2)[1]),
            ],
            captions=False,
        ),
        FormatSpec(
            format=MemeFormat.DISTRACTED,
            description="being tempted away from what you should care about",
            canvas=(1536, 1024),
            panels=[
                Panel(name="temptation", box=(0.03, 0.62, 0.33, 0.97), max_chars=40),
                Panel(name="you", box=(0.36, 0.62, 0.64, 0.97), max_chars=40),
                Panel(name="what you should care about", box=(0.67, 0.62, 0.97, 0.97), max_chars=40),
            ],
            scenes=[Scene(subject="a person on a street glancing back at a passer-by", box=(0, 0, 1, 1))],
            captions=True,
        ),
        FormatSpec(
            format=MemeFormat.TWO_BUTTONS,
            description="a hard choice between two options",
            canvas=(1024, 1024),
            panels=[
                Panel(name="left button", box=(0.04, 0.04, 0.48, 0.34), max_chars=50),
                Panel(name="right button", box=(0.52, 0.04, 0.96, 0.34), max_chars=50),
                Panel(name="who is choosing", box=(0.05, 0.74, 0.95, 0.97), max_chars=60),
            ],
            scenes=[Scene(subject="a sweating person in front of two red buttons", box=(0, 0, 1, 1))],
            captions=True,
        ),
        FormatSpec(
            format=MemeFormat.CHANGE_MY_MIND,
            description="a bold opinion put up for debate",
            canvas=(1536, 1024),
            panels=[Panel(name="opinion", box=(0.2, 0.55, 0.8, 0.95), max_chars=110)],
            scenes=[Scene(subject="a person at a table with a sign, outdoors", box=(0, 0, 1, 1))],
            captions=True,
        ),
        FormatSpec(
            format=MemeFormat.EXPANDING_BRAIN,
            description="ideas that get more absurdly enlightened step by step",
            canvas=(1024, 1536),
            panels=[
                Panel(name=f"level {i + 1}", box=(0.53, i / 4 + 0.02, 0.97, (i + 1) / 4 - 0.02), max_chars=70)
                for i in range(4)
            ],
            scenes=[
                Scene(subject=f"a glowing brain, brightness level {i + 1} of 4", box=_rows(4)[i]) for i in range(4)
            ],
            captions=False,
        ),
    ]
}
FORMAT_NAMES = [f.value for f in MemeFormat]
SCENE_OPTIONS = ImageOptions(quality="medium", size="1536x1024", background="opaque", format="png")  # its picture


class MemeJob(BaseModel):
    topic: Prompt = Field(max_length=300)
    format: MemeFormat | Literal["auto"] = "auto"
    style: str = Field(default="", max_length=200)
    max_refinements: int = Field(default=2, ge=0, le=10)
    target_score: float = Field(default=0.7, ge=0, le=1)
    use_cache: bool = True
    blocked_words: list[str] = Field(default_factory=list, max_length=200)
    image_deadline_s: int = Field(default=180, ge=1, le=3600)  # past it, a plain background is used
    cost: CostLimit | None = None  # a dollar budget for the whole meme
    models: ModelChoice = Field(default_factory=ModelChoice)  # catalog ids per kind of call; unset: the defaults


class FormatRequest(PaidRequest):
    topic: str
    style: str


class FormatChoice(ModelOutput):
    format: MemeFormat
    reason: str = Field(min_length=1, max_length=400)


class TextRequest(PaidRequest):
    """Write (or, with `previous` and `feedback`, rewrite) the panel texts for one format."""

    topic: str
    style: str
    format: MemeFormat
    attempt: int = Field(default=0, ge=0)  # 0 for the first draft, then one more per rewrite
    previous: list[str] = Field(default_factory=list)
    feedback: str = ""
    avoid: list[str] = Field(default_factory=list)  # blocked words, never to be used


class MemeText(ModelOutput):
    panels: list[str] = Field(min_length=1, max_length=6)
    scene: str = Field(default="", max_length=300)  # what the picture should show, beyond the format's scenes


class JudgeRequest(PaidRequest):
    topic: str
    format: MemeFormat
    panels: list[str]


class MemeJudgement(ModelOutput):
    humor: float = Field(ge=0, le=1)
    clarity: float = Field(ge=0, le=1)
    feedback: str = Field(min_length=1, max_length=600)


class Draft(BaseModel):
    """One version of the text, with its checks and scores."""

    panels: list[str]
    scene: str = ""
    problems: list[str] = Field(default_factory=list)
    humor: float | None = None
    clarity: float | None = None
    relevance: float | None = None  # topic/text similarity from the scoring queue; None when it was unavailable
    score: float | None = None
    feedback: str = ""


class MemePhase(StrEnum):
    IDLE = "IDLE"
    SELECTING_FORMAT = "SELECTING_FORMAT"
    GENERATING_TEXT = "GENERATING_TEXT"
    VERIFYING = "VERIFYING"
    SCORING = "SCORING"
    REFINING = "REFINING"
    GENERATING_IMAGE = "GENERATING_IMAGE"
    POST_PROCESSING = "POST_PROCESSING"
    UPLOADING = "UPLOADING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class MemeMetrics(BaseModel):
    phase_ms: dict[str, int] = Field(default_factory=dict)  # time spent per phase
    refinements: int = 0
    scores: list[float] = Field(default_factory=list)
    cache_hit: bool = False


class MemeStatus(BaseModel):
    phase: MemePhase = MemePhase.IDLE
    format: MemeFormat | None = None
    drafts: int = 0
    best_score: float | None = None
    usage: Usage = Field(default_factory=Usage)
    spend: Spend | None = None  # spent vs the dollar budget, when the meme has one


class SceneRequest(PaidRequest):
    MODEL_KIND = "image"

    meme_id: str
    index: int
    prompt: str
    size: Literal["1024x1024", "1536x1024", "1024x1536"]


class RenderRequest(BaseModel):
    meme_id: str
    format: MemeFormat
    panels: list[str]
    scenes: list[ArtifactRef | None]  # None: draw a plain background there


class CacheKeyRequest(BaseModel):
    topic: str
    format: str
    style: str
    read: bool = True  # False (--no-cache): only the key, for replacing the entry afterwards
    models: ModelChoice | None = None  # the run's chosen models (part of the key); None: the worker's defaults


class CachedMeme(BaseModel):
    """What the cache keeps of a finished meme: enough to answer an identical request at once."""

    key: str
    format: MemeFormat
    format_reason: str
    panels: list[str]
    score: float
    history: list[Draft]
    image: ArtifactRef
    degraded: str | None = None
    provider: str


class CacheLookup(BaseModel):
    key: str
    provider: str  # the worker's provider, for the result
    hit: CachedMeme | None = None


class Published(BaseModel):
    image: ArtifactRef  # the public copy, by key: its link is minted when the result is read
    url: str | None = None  # only in results recorded before: a 7-day presigned URL (MinIO/S3) or a file path


class MemeResult(BaseModel):
    meme_id: str
    topic: str
    format: MemeFormat
    format_reason: str
    panels: list[str]
    score: float
    target_score: float
    stopped_because: Literal["target_reached", "out_of_refinements", "budget_exhausted", "cached"]
    refinements: int
    history: list[Draft]
    image: ArtifactRef
    # None in new results: the link (presigned URL or file path) is minted from `image.key` when the result is
    # read (`meme_link`), never kept in history; results recorded before hold one minted when made
    url: str | None
    cache: Literal["hit", "miss", "bypassed"]
    degraded: str | None = None  # set when the meme had to be made without generated images
    upload_error: str | None = None
    provider: str
    text_model: str | None = None  # the catalog id of the model that wrote the text (None: recorded before, cached)
    image_model: str | None = None  # and of the one that made the scenes (None also: none was made)
    metrics: MemeMetrics
    usage: Usage = Field(default_factory=Usage)
    spend: Spend | None = None
    budget_exhausted: bool = False


# --- pure helpers, safe in workflows ---------------------------------------------------------
def verify(spec: FormatSpec, panels: list[str], blocked_words: list[str]) -> list[str]:
    """What is wrong with a draft's panels: count, empty panels, lengths, blocked words."""
    problems = []
    if len(panels) != len(spec.panels):
        problems.append(f"{spec.format.value} needs {len(spec.panels)} panels, got {len(panels)}")
    for panel, text in zip(spec.panels, panels, strict=False):
        if not text.strip():
            problems.append(f"panel '{panel.name}' is empty")
        elif len(text) > panel.max_chars:
            problems.append(f"panel '{panel.name}' has {len(text)} characters, at most {panel.max_chars}")
    words = {w.lower() for w in re.findall(r"[\w'-]+", " ".join(panels))}
    blocked = sorted({b.lower() for b in blocked_words if b.strip()} & words)
    if blocked:
        problems.append(f"blocked words: {', '.join(blocked)}")
    return problems


def combine_score(humor: float, clarity: float, relevance: float | None) -> float:
    """0–1: the judge's humor and clarity, with the scoring queue's topic relevance when there is one."""
    if relevance is None:
        return round(0.65 * humor + 0.35 * clarity, 3)
    return round(0.45 * humor + 0.25 * clarity + 0.3 * relevance, 3)


def scene_size(box: Box, canvas: tuple[int, int]) -> Literal["1024x1024", "1536x1024", "1024x1536"]:
    """The generation size whose shape is nearest the scene's box."""
    width, height = (box[2] - box[0]) * canvas[0], (box[3] - box[1]) * canvas[1]
    ratio = width / height
    if ratio > 1.25:
        return "1536x1024"
    if ratio < 0.8:
        return "1024x1536"
    return "1024x1024"

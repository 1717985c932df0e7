"""Schemas of the world pipeline: world → characters → posts (seed 001's fields)."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, Field

from models.artifacts import ArtifactRef
from models.catalog import ModelChoice
from models.image import ImageOptions
from models.text import ModelOutput, Prompt
from models.usage import CallKind, CostLimit, PaidRequest, Spend, Usage

# --- what the language model writes -----------------------------------------------------------


class NotableLocation(ModelOutput):
    name: str
    description: str


class WorldDescription(ModelOutput):
    name: str
    description: str
    theme: str
    technology_level: str
    social_structure: str
    culture: str
    geography: str
    visual_style: str
    history: str
    notable_locations: list[NotableLocation] = Field(min_length=1, max_length=8)


class CharacterSeed(ModelOutput):
    username: str
    display_name: str
    role_in_world: str
    personality_traits: list[str] = Field(min_length=1, max_length=6)
    interests: list[str] = Field(min_length=1, max_length=8)
    posts_count: int = Field(ge=0, le=100)


class CharacterConnection(ModelOutput):
    character1: str
    character2: str
    relationship: str


class CharacterBatch(ModelOutput):
    characters: list[CharacterSeed] = Field(min_length=1)
    world_interpretation: str
    character_connections: list[CharacterConnection] = Field(default_factory=list)
    generated_characters_description: str


class CharacterDetail(ModelOutput):
    username: str
    display_name: str
    bio: str
    appearance: str
    personality: str
    avatar_description: str
    interests: list[str] = Field(min_length=1, max_length=10)
    speaking_style: str


class PostIdea(ModelOutput):
    topic: str
    brief: str
    emotional_tone: str
    post_type: str
    has_image: bool


class PostBatch(ModelOutput):
    posts: list[PostIdea] = Field(min_length=1)
    narrative_arc: str
    character_development: str
    recurring_themes: list[str] = Field(default_factory=list, max_length=8)


class PostDetail(ModelOutput):
    content: str
    image_prompt: str
    hashtags: list[str] = Field(default_factory=list, max_length=12)
    mood: str
    context: str


# --- activity requests ------------------------------------------------------------------------


class WorldPromptRequest(PaidRequest):
    world_id: str
    prompt: Prompt


class WorldImageRequest(PaidRequest):
    MODEL_KIND = "image"

    world_id: str
    kind: str  # background | icon
    world_text: str
    visual_style: str


class CharacterSummary(BaseModel):
    username: str
    display_name: str
    role_in_world: str


class CharacterBatchRequest(PaidRequest):
    world_id: str
    world_text: str
    batch_index: int
    count: int = Field(ge=1)
    max_posts: int = Field(ge=0)
    previous: list[CharacterSummary] = Field(default_factory=list)


class CharacterDetailRequest(PaidRequest):
    world_id: str
    world_text: str
    seed: CharacterSeed


class AvatarRequest(PaidRequest):
    MODEL_KIND = "image"

    world_id: str
    username: str
    avatar_description: str
    visual_style: str


class PostSummary(BaseModel):
    number: int
    topic: str
    brief: str


class PostBatchRequest(PaidRequest):
    world_id: str
    world_text: str
    character: CharacterDetail
    batch_index: int
    count: int = Field(ge=1)
    previous: list[PostSummary] = Field(default_factory=list)
    narrative_arc: str | None = None


class PostDetailRequest(PaidRequest):
    world_id: str
    world_text: str
    character: CharacterDetail
    number: int
    idea: PostIdea
    narrative_arc: str


class PostImageRequest(PaidRequest):
    MODEL_KIND = "image"

    world_id: str
    username: str
    number: int
    image_prompt: str
    visual_style: str


# --- workflow inputs, progress and results ----------------------------------------------------

# the world's own pictures (what each shows, how it is asked for) and every character's avatar and posts
WORLD_IMAGE = {
    "background": ("A wide landscape showing the geography", ImageOptions(size="1536x1024", quality="low")),
    "icon": ("A simple emblem that stands for", ImageOptions(size="1024x1024", quality="low")),
}
PORTRAIT = ImageOptions(size="1024x1024", quality="low", background="opaque", format="jpeg")


def picture_options(images: bool) -> list[ImageOptions]:
    """How each kind of picture a world makes is asked for (none without `images`): its budget's quote."""
    return [options for _, options in WORLD_IMAGE.values()] + [PORTRAIT] if images else []


class Budget(BaseModel):
    """Caps on model calls for one world (seed 001's API call limits), and optionally on dollars."""

    llm_calls: int = Field(default=20_000, ge=0)
    image_calls: int = Field(default=5_000, ge=0)
    cost: CostLimit | None = None


class CallUsage(BaseModel):
    llm_calls: int = 0
    image_calls: int = 0

    @classmethod
    def one(cls, kind: CallKind, count: int = 1) -> CallUsage:
        """`count` calls of a kind (`text` or `image`)."""
        return cls(llm_calls=count if kind == "text" else 0, image_calls=count if kind == "image" else 0)

    def plus(self, other: CallUsage) -> CallUsage:
        return CallUsage(llm_calls=self.llm_calls + other.llm_calls, image_calls=self.image_calls + other.image_calls)

    def covers(self, other: CallUsage) -> bool:
        """Whether these calls include `other`'s, kind by kind."""
        return other.llm_calls <= self.llm_calls and other.image_calls <= self.image_calls


class WorldJob(BaseModel):
    prompt: Prompt = Field(max_length=4000)
    characters: int = Field(default=5, ge=1, le=200)
    posts_per_character: int = Field(default=4, ge=0, le=100)
    images: bool = True
    budget: Budget = Field(default_factory=Budget)
    character_batch_size: int = Field(default=5, ge=1, le=20)
    post_batch_size: int = Field(default=5, ge=1, le=20)
    max_parallel_characters: int = Field(default=10, ge=1, le=50)
    scoring: bool = True  # near-duplicate characters regenerated, post/persona consistency measured
    models: ModelChoice = Field(default_factory=ModelChoice)  # catalog ids per kind of call; unset: the defaults


class PhaseState(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class WorldState(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


PHASES = (
    "world_description",
    "world_images",
    "characters",
    "character_details",
    "avatars",
    "posts",
    "post_images",
)


class Counter(BaseModel):
    planned: int = 0
    created: int = 0


class Failure(BaseModel):
    step: str
    error: str


class WorldStatus(BaseModel):
    """The generation status the `status` query returns (seed 001's phases and counters)."""

    world_id: str
    state: WorldState = WorldState.RUNNING
    world_name: str | None = None
    phases: dict[str, PhaseState] = Field(default_factory=lambda: dict.fromkeys(PHASES, PhaseState.PENDING))
    characters: Counter = Field(default_factory=Counter)
    posts: Counter = Field(default_factory=Counter)
    images: Counter = Field(default_factory=Counter)
    calls: CallUsage = Field(default_factory=CallUsage)
    usage: Usage = Field(default_factory=Usage)  # tokens, images, estimated cost
    budget: Budget = Field(default_factory=Budget)
    budget_exhausted: bool = False
    spend: Spend | None = None  # spent vs the dollar budget, when the world has one
    duplicates_regenerated: int = 0  # characters replaced for being near-copies of others
    consistency: dict[str, float] = Field(default_factory=dict)  # username → mean post/persona similarity
    failures: list[Failure] = Field(default_factory=list)


class ProgressDelta(BaseModel):
    """A child's report to its world: what it has just planned or created, and its calls so far."""

    username: str
    characters_created: int = 0
    posts_planned: int = 0
    posts_created: int = 0
    images_planned: int = 0
    images_created: int = 0
    calls: CallUsage = Field(default_factory=CallUsage)
    usage: Usage = Field(default_factory=Usage)  # tokens, images, estimated cost


class CharacterJob(BaseModel):
    world_id: str
    world_text: str
    visual_style: str
    seed: CharacterSeed
    images: bool
    scoring: bool = True
    post_batch_size: int
    allowance: CallUsage  # the share of the world's budget this character may spend
    cost: CostLimit | None = None  # its share of the world's dollar budget
    models: ModelChoice = Field(default_factory=ModelChoice)  # the world's choice of models


class PostRecord(BaseModel):
    number: int
    idea: PostIdea
    post: ArtifactRef
    image: ArtifactRef | None = None
    image_refused: str | None = None  # the provider's safety system refused the picture: its reason
    model: str | None = None  # the catalog id of the model that wrote the post (None: recorded before)
    image_model: str | None = None  # and of the one that made its picture


class CharacterManifest(BaseModel):
    """Everything one character produced; stored as characters/<username>/character.json."""

    world_id: str
    username: str
    display_name: str
    role_in_world: str
    profile: ArtifactRef | None = None
    avatar: ArtifactRef | None = None
    posts: list[PostRecord] = Field(default_factory=list)
    model: str | None = None  # the catalog id of the model that wrote the profile (None: recorded before)
    avatar_model: str | None = None  # and of the one that made the avatar


class CharacterResult(BaseModel):
    """What a CharacterWorkflow returns to its world: counts and a claim check, not the posts."""

    username: str
    manifest: ArtifactRef | None = None
    posts_created: int = 0
    images_created: int = 0
    failures: list[Failure] = Field(default_factory=list)
    calls: CallUsage = Field(default_factory=CallUsage)
    usage: Usage = Field(default_factory=Usage)  # tokens, images, estimated cost
    budget_exhausted: bool = False
    consistency: float | None = None  # mean similarity of the posts to the persona


class _WorldIndex(BaseModel):
    world_id: str
    consistency: dict[str, float] = Field(default_factory=dict)
    prompt: str
    state: WorldState
    world: ArtifactRef
    world_name: str
    background: ArtifactRef | None = None
    icon: ArtifactRef | None = None
    model: str | None = None  # the catalog id of the model that described the world (None: recorded before)
    image_models: dict[str, str] = Field(default_factory=dict)  # background / icon → the model that made it
    failures: list[Failure]
    calls: CallUsage
    usage: Usage = Field(default_factory=Usage)  # tokens, images, estimated cost


class WorldManifestRequest(_WorldIndex):
    """What the world knows at the end: each character by the claim check of its manifest."""

    characters: list[ArtifactRef]


class WorldManifest(_WorldIndex):
    """manifest.json: the index of every artifact of one world."""

    characters: list[CharacterManifest]


class WorldResult(BaseModel):
    world_id: str
    state: WorldState
    manifest: ArtifactRef | None  # None when storage kept failing (the failure is in status.failures)
    gallery: ArtifactRef | None
    status: WorldStatus


# --- pure helpers, safe in workflows ---------------------------------------------------------

_USERNAME = re.compile(r"[^a-z0-9_]+")


def safe_username(raw: str, taken: set[str]) -> str:
    """Lower-case, storage-safe and unique within `taken` (which it updates)."""
    base = _USERNAME.sub("_", raw.lower()).strip("_")[:28] or "character"
    name, n = base, 2
    while name in taken:
        name = f"{base}_{n}"
        n += 1
    taken.add(name)
    return name


def format_world(world: WorldDescription) -> str:
    """The world as prompt text: formatted once, passed to every later step."""
    locations = "\n".join(f"- {loc.name}: {loc.description}" for loc in world.notable_locations)
    return (
        f"World: {world.name}\n{world.description}\nTheme: {world.theme}\n"
        f"Technology level: {world.technology_level}\nSocial structure: {world.social_structure}\n"
        f"Culture: {world.culture}\nGeography: {world.geography}\nVisual style: {world.visual_style}\n"
        f"History: {world.history}\nNotable locations:\n{locations}"
    )


def persona_text(seed: CharacterSeed) -> str:
    """Who a character is, without the name: renamed copies of one character read the same."""
    return f"{seed.role_in_world}. {', '.join(seed.personality_traits)}. Into {', '.join(seed.interests)}."


def profile_text(detail: CharacterDetail) -> str:
    return f"{detail.bio} {detail.personality} Interests: {', '.join(detail.interests)}."

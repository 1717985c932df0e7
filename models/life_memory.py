"""Schemas of a life's memory: what each character remembers (its own posts, the replies it received, what it read,
its reflections), searched the conversation pipeline's way (`models.conversation`'s passage searches), and the short
reflections it writes every few ticks. Stored under the life's keys (`activities.life_memory`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from models.artifacts import ArtifactRef
from models.conversation import Passage
from models.life import CastMember, Post
from models.text import ModelOutput
from models.usage import PaidRequest


class ReflectionNote(ModelOutput):
    """One character's reflection: a few sentences on what it has lived lately."""

    username: str
    text: str = Field(max_length=400)


class Reflections(ModelOutput):
    """A batch's reflections: one per character of the batch."""

    reflections: list[ReflectionNote]


class Reflection(BaseModel):
    """A stored reflection (`lives/<life>/reflections/<NNNN>-<BBB>.json` holds a batch's)."""

    username: str
    tick: int
    text: str


class GatherRequest(BaseModel):
    life_id: str
    tick: int
    cast: ArtifactRef
    state: ArtifactRef
    feeds: ArtifactRef
    active: list[str]


class Gathered(BaseModel):
    """A tick's memory searches, stored: each active character's query and what it may recall; its latest
    reflections; and where the ranked memories go."""

    searches: ArtifactRef  # PassageSearches (models.conversation)
    reflections: ArtifactRef  # Remembered: the latest reflection of each active character
    ranked_key: str  # where the ranked memories go (Ranked)


class Remembered(BaseModel):
    """`lives/<life>/memory/<NNNN>-reflections.json`: the latest reflection of each active character."""

    tick: int
    reflections: dict[str, Reflection] = Field(default_factory=dict)


class ReflectRequest(PaidRequest):
    life_id: str
    tick: int
    batch: int
    usernames: list[str]
    cast: ArtifactRef
    state: ArtifactRef
    recalled: ArtifactRef | None = None


class ReflectionContext(BaseModel):
    """What a batch's characters reflect on: their recent posts, the replies they got, what they recall."""

    tick: int
    world_name: str = ""
    characters: list[CastMember]
    posts: dict[str, list[Post]] = Field(default_factory=dict)  # their own, latest last
    replies: dict[str, list[Post]] = Field(default_factory=dict)  # replies and quotes they received
    memories: dict[str, list[Passage]] = Field(default_factory=dict)


class Reflected(BaseModel):
    reflections: ArtifactRef
    count: int

"""PostChain conversations: the AEIOU-Y phases, the conversation's private state, knowledge-base documents."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field
from temporalio.contrib.workflow_streams import WorkflowStreamState

from models.artifacts import ArtifactRef
from models.catalog import ModelChoice
from models.text import ModelOutput, Prompt
from models.usage import ModelRequest, Usage

MAX_CONCEPTS = 200  # observations kept per conversation
MAX_LINKS = 200


class Phase(StrEnum):
    ACTION = "action"
    EXPERIENCE = "experience"
    INTENTION = "intention"
    OBSERVATION = "observation"
    UNDERSTANDING = "understanding"
    YIELD = "yield"


# --- what the phases return (model outputs) ----------------------------------------------------
class ActionOutput(ModelOutput):
    response: str = Field(min_length=1, max_length=2000)


class IntentionOutput(ModelOutput):
    intent: str = Field(min_length=1, max_length=200)
    needs: list[str] = Field(default_factory=list, max_length=8)


class Link(ModelOutput):
    source: str = Field(min_length=1, max_length=80)
    target: str = Field(min_length=1, max_length=80)
    relation: str = Field(min_length=1, max_length=80)


class ObservationOutput(ModelOutput):
    concepts: list[str] = Field(default_factory=list, max_length=12)
    links: list[Link] = Field(default_factory=list, max_length=12)


class UnderstandingOutput(ModelOutput):
    decision: Literal["answer", "search_again"]
    query: str = Field(default="", max_length=400)  # what to look for when searching again
    reason: str = Field(min_length=1, max_length=400)


class YieldOutput(ModelOutput):
    answer: str = Field(min_length=1, max_length=4000)
    cited: list[int] = Field(default_factory=list, max_length=10)  # 1-based numbers of the passages used


# --- phase requests (what each phase sees) -----------------------------------------------------
class Passage(BaseModel):
    source: Literal["turn", "kb", "memory"]
    ref: str  # "turn 3", "<doc id>#<chunk>", or a character's memory: a post's id, "profile", "reflection <tick>"
    title: str  # what to show: the turn's number, the document's name, what the memory is
    text: str
    score: float


class Speaker(BaseModel):
    """A world's character a conversation speaks as: its phases answer in its voice, and its retrieval searches the
    character's memory (profile, posts, replies it got, what it read, reflections) instead of a knowledge base."""

    world_id: str
    username: str
    display_name: str = ""
    bio: str = ""
    speaking_style: str = ""

    def voice(self) -> str:
        """A line for a prompt: whom to speak as, and how."""
        style = f" Speak as they do: {self.speaking_style}." if self.speaking_style else ""
        return f"You are @{self.username} ({self.display_name or self.username}): {self.bio}{style}"


class PassageSearch(BaseModel):
    """One query over passages given with it (a character's memory): `rank_passages` keeps the best."""

    query: str
    passages: list[Passage]


class PassageSearches(BaseModel):
    """Many searches at once, by name (stored: a life's tick searches every active character's memory)."""

    searches: dict[str, PassageSearch]


class RankPassagesRequest(BaseModel):
    searches: ArtifactRef  # PassageSearches
    k: int = Field(default=4, ge=1, le=20)
    key: str  # where the Ranked answer is stored


class Ranked(BaseModel):
    """Each search's best passages, most similar first."""

    found: dict[str, list[Passage]]


class ActionRequest(ModelRequest):
    user: str
    speaker: Speaker | None = None  # answer as this character
    recent: list[str] = Field(default_factory=list)  # the last turns, "User: …" / "Assistant: …"
    stream_turn: int | None = None  # set: the reply's text goes to the conversation's stream as this turn's


class RetrieveRequest(BaseModel):
    conversation_id: str
    query: str
    before_turn: int  # earlier turns only
    k: int = Field(default=4, ge=1, le=20)
    knowledge: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,31}$")  # whose base (None: shared)
    speaker: Speaker | None = None  # set: search this character's memory instead of the knowledge base


class Retrieved(BaseModel):
    passages: list[Passage]
    searched_turns: int
    searched_chunks: int


class IntentionRequest(ModelRequest):
    user: str
    draft: str


class ObservationRequest(ModelRequest):
    user: str
    draft: str
    intent: str


class UnderstandingRequest(ModelRequest):
    user: str
    intent: str
    concepts: list[str]
    passages: list[Passage]
    searches_left: int


class YieldRequest(ModelRequest):
    user: str
    draft: str
    intent: str
    passages: list[Passage]
    retrieval: bool  # False when Experience was unavailable
    speaker: Speaker | None = None  # answer as this character
    stream_turn: int | None = None  # set: the answer's text goes to the conversation's stream as this turn's


# --- the conversation's state --------------------------------------------------------------------
class PhaseRecord(BaseModel):
    phase: Phase
    summary: str  # one line, for people watching the turn
    ms: int
    degraded: str | None = None  # set when the phase kept failing and the turn went on without it


class TurnRecord(BaseModel):
    number: int
    user: str
    reply: str
    intent: str = ""
    citations: list[Passage] = Field(default_factory=list)
    phases: list[PhaseRecord] = Field(default_factory=list)
    degraded: list[str] = Field(default_factory=list)
    started_at: datetime
    finished_at: datetime
    model: str | None = None  # the catalog id of the model that wrote the reply (None: recorded before, degraded)


class Observations(BaseModel):
    concepts: dict[str, int] = Field(default_factory=dict)  # concept → how many turns mentioned it
    links: list[Link] = Field(default_factory=list)

    def record(self, found: ObservationOutput) -> None:
        for concept in found.concepts:
            name = concept.strip().lower()
            if name and (name in self.concepts or len(self.concepts) < MAX_CONCEPTS):
                self.concepts[name] = self.concepts.get(name, 0) + 1
        for link in found.links:
            if link not in self.links:
                self.links.append(link)
        del self.links[: max(0, len(self.links) - MAX_LINKS)]


class ConversationConfig(BaseModel):
    continue_after_turns: int = Field(default=20, ge=1, le=1000)  # then continue-as-new with compacted state
    keep_recent: int = Field(default=6, ge=1, le=50)  # turns kept in full; older ones become summary lines
    search_again: int = Field(default=1, ge=0, le=3)  # extra Experience passes Understanding may ask for
    top_k: int = Field(default=4, ge=1, le=20)
    retrieval_wait_s: int = Field(default=20, ge=1, le=600)  # the search, on a busy scoring worker; then degraded
    archive_wait_s: int = Field(default=60, ge=1, le=3600)  # storage failing longer: reply says archiving failed
    stream: bool = True  # publish each turn to the conversation's Workflow Stream (subscribers see it written)
    knowledge: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,31}$")  # whose base (None: shared)
    models: ModelChoice = Field(default_factory=ModelChoice)  # its text model by catalog id; unset: the default
    speaker: Speaker | None = None  # a world's character it speaks as (`POST /v1/worlds/{id}/characters/…`)


class ConversationState(BaseModel):
    """Everything the conversation knows, private to its workflow and carried across continue-as-new."""

    conversation_id: str
    turns_total: int = 0
    recent: list[TurnRecord] = Field(default_factory=list)
    summary: list[str] = Field(default_factory=list)  # one line per turn that left `recent`
    observations: Observations = Field(default_factory=Observations)
    runs: int = 1  # workflow runs so far (continue-as-new count + 1)
    usage: Usage = Field(default_factory=Usage)

    def add(self, turn: TurnRecord, keep_recent: int) -> None:
        self.turns_total = turn.number
        self.recent.append(turn)
        while len(self.recent) > keep_recent:
            old = self.recent.pop(0)
            self.summary.append(summary_line(old))
        del self.summary[: max(0, len(self.summary) - 200)]


class ConversationStart(BaseModel):
    config: ConversationConfig = Field(default_factory=ConversationConfig)
    state: ConversationState | None = None  # set when the conversation continues as new
    pending: list[str] = Field(default_factory=list)  # told messages carried over, answered first, in order
    stream: WorkflowStreamState | None = None  # the Workflow Stream's state, carried across continue-as-new


class Reply(BaseModel):
    turn: int
    text: str
    citations: list[Passage] = Field(default_factory=list)
    degraded: list[str] = Field(default_factory=list)
    phases: list[PhaseRecord] = Field(default_factory=list)
    model: str | None = None  # the catalog id of the model that wrote it (None: recorded before, degraded)


class Progress(BaseModel):
    """The turn in progress, phase by phase, for live display."""

    turn: int | None = None
    user: str | None = None
    phases: list[PhaseRecord] = Field(default_factory=list)
    queued: int = 0
    turns_total: int = 0


class History(BaseModel):
    conversation_id: str
    turns_total: int
    runs: int
    summary: list[str]
    recent: list[TurnRecord]
    usage: Usage


class UserMessage(BaseModel):
    text: Prompt = Field(max_length=4000)


# --- knowledge base --------------------------------------------------------------------------------
class Chunk(BaseModel):
    index: int
    text: str
    embedding: list[float]


class KnowledgeDoc(BaseModel):
    doc_id: str
    name: str
    source: ArtifactRef
    chunks: list[Chunk]


class DocSummary(BaseModel):
    doc_id: str
    name: str
    chunks: int
    characters: int


class IngestDoc(BaseModel):
    name: str
    source: ArtifactRef
    knowledge: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,31}$")  # whose base (None: shared)


class IngestJob(BaseModel):
    docs: list[IngestDoc] = Field(min_length=1, max_length=100)


# --- pure helpers, safe in workflows -------------------------------------------------------------
def summary_line(turn: TurnRecord) -> str:
    return f"turn {turn.number}: user: {_clip(turn.user, 120)} | reply: {_clip(turn.reply, 160)}"


def transcript_lines(turns: list[TurnRecord]) -> list[str]:
    return [line for t in turns for line in (f"User: {_clip(t.user, 400)}", f"Assistant: {_clip(t.reply, 400)}")]


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"

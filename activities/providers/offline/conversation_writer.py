"""Offline PostChain phases: rule-based, deterministic, and honest about what they found.

Intention is read from the message's form; Observation keeps its keywords; Understanding searches
again when nothing relevant was found; Yield answers from the passages Experience retrieved (quoting
and citing them), or says plainly that it has nothing to go on.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

from pydantic import BaseModel

from activities.providers.offline.writer import keywords
from models.conversation import (
    ActionOutput,
    ActionRequest,
    IntentionOutput,
    IntentionRequest,
    Link,
    ObservationOutput,
    ObservationRequest,
    Passage,
    UnderstandingOutput,
    UnderstandingRequest,
    YieldOutput,
    YieldRequest,
)

RELEVANT = 0.3  # passages at least this similar are worth citing
RECALL = re.compile(r"\b(remember|earlier|before|did i|i said|i told|my|mine)\b", re.I)
QUESTION = re.compile(r"^\s*(who|what|when|where|why|how|which|can|could|should|would|is|are|do|does|did)\b", re.I)
REQUEST = re.compile(r"^\s*(please|tell|explain|show|list|give|help|write|describe|summari[sz]e)\b", re.I)


FILLER = {
    "how",
    "what",
    "when",
    "where",
    "why",
    "who",
    "which",
    "should",
    "would",
    "could",
    "can",
    "does",
    "did",
    "tell",
}


def _terms(text: str, n: int = 6) -> list[str]:
    found = [w for w in keywords(text) if w not in FILLER]
    return [] if found == ["atelier"] and "atelier" not in text.lower() else found[:n]


def action(request: ActionRequest) -> ActionOutput:
    terms = ", ".join(_terms(request.user, 4)) or "that"
    if "?" in request.user or QUESTION.match(request.user):
        return ActionOutput(response=f"Good question about {terms}; let me check what I know.")
    return ActionOutput(response=f"Noted: {terms}.")


def intention(request: IntentionRequest) -> IntentionOutput:
    text = request.user
    if "?" in text or QUESTION.match(text) or REQUEST.match(text):
        kind = "recall and answer" if RECALL.search(text) else "get an answer"
    else:
        kind = "share information to be remembered"
    return IntentionOutput(intent=kind, needs=_terms(text, 4))


def observation(request: ObservationRequest) -> ObservationOutput:
    concepts = _terms(request.user, 6)
    links = [Link(source=a, target=b, relation="mentioned with") for a, b in itertools.pairwise(concepts)]
    return ObservationOutput(concepts=concepts, links=links[:5])


def understanding(request: UnderstandingRequest) -> UnderstandingOutput:
    best = max((p.score for p in request.passages), default=0.0)
    if best < RELEVANT and request.searches_left > 0 and request.concepts:
        query = " ".join(request.concepts)
        return UnderstandingOutput(
            decision="search_again", query=query, reason=f"nothing relevant yet (best {best:.2f}); searching '{query}'"
        )
    reason = f"{sum(p.score >= RELEVANT for p in request.passages)} relevant passages" if best >= RELEVANT else ""
    return UnderstandingOutput(decision="answer", reason=reason or "answering with what there is")


def _quote(passage: Passage) -> str:
    text = passage.text
    if passage.source == "turn":  # quote what the user said in that turn
        text = text.split("\nAssistant:")[0].removeprefix("User: ")
    flat = " ".join(w for w in text.split() if not w.startswith("#"))
    return flat if len(flat) <= 220 else flat[:219] + "…"


def _where(passage: Passage) -> str:
    if passage.source == "turn":
        return f"you told me in {passage.title}"
    if passage.source == "memory":  # a character's own memory: its title says what it is ("I wrote (post …)")
        return passage.title
    return f"{passage.title} says"


def yield_answer(request: YieldRequest) -> YieldOutput:
    """The answer from the relevant passages, quoted and cited; as a character, in its name and from its memory."""
    speaker = request.speaker
    voice = f"@{speaker.username} here. " if speaker else ""
    if request.intent.startswith("share"):
        return YieldOutput(answer=f"{voice}Got it, I will remember that: {request.user.strip()}", cited=[])
    relevant = [(i, p) for i, p in enumerate(request.passages, 1) if p.score >= RELEVANT][:3]
    if not relevant:
        missing = "" if request.retrieval else " (retrieval was unavailable)"
        where = "my memory" if speaker else "our conversation or the knowledge base"
        return YieldOutput(answer=f"{voice}{request.draft} I have nothing on this in {where}{missing}.")
    parts = [f'{_where(passage)}: "{_quote(passage)}" [{number}]' for number, passage in relevant]
    found = "From what I remember, " if speaker else "From what I found, "
    return YieldOutput(answer=voice + found + "; ".join(parts) + ".", cited=[n for n, _ in relevant])


WRITERS: dict[type[BaseModel], Callable[..., BaseModel]] = {
    ActionOutput: action,
    IntentionOutput: intention,
    ObservationOutput: observation,
    UnderstandingOutput: understanding,
    YieldOutput: yield_answer,
}

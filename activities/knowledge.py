"""Knowledge-base ingestion and retrieval, on the scoring queue (where the embedding model is loaded).

Documents are chunked by paragraph, embedded with MiniLM and stored as `kb/docs/<doc id>.json`
(chunks + unit vectors). Retrieval embeds the query and ranks those chunks together with the
conversation's archived turns (`conversations/<id>/turns/NNNNN.json`) by cosine similarity; a conversation
with a world's character searches the character's memory (`activities.life_memory`) instead of the base.
`rank_passages` runs many such searches at once over passages given with each (a life's tick: every
active character's memory); `rank_feeds_by_meaning` ranks a life's feeds of a tick with the same embeddings
(`activities.life_feeds`: each member's interests and each candidate post embedded once, and cached).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import PurePath

import torch
from cachetools import LRUCache
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.life_feeds import Meaning, Ranker, feeds_of, interests_text
from activities.life_memory import character_memory
from activities.scoring.text import TextEmbedder
from kit.life_layout import life_key
from kit.storage import ArtifactStore, artifact_key, kb_doc_key, kb_prefix, load
from models.artifacts import ArtifactRef
from models.conversation import (
    Chunk,
    DocSummary,
    IngestDoc,
    KnowledgeDoc,
    Passage,
    PassageSearches,
    Ranked,
    RankPassagesRequest,
    Retrieved,
    RetrieveRequest,
    TurnRecord,
)
from models.life import Cast, Feeds, LifeState, RankRequest

CHUNK_CHARS = 800
MIN_SCORE = 0.2  # passages less similar than this are noise
CACHE_SIZE = 10_000  # embedded texts and archived turns kept per worker (least recently used go first)
DOC_CACHE_SIZE = 256  # knowledge-base documents kept parsed per worker


def turns_prefix(conversation_id: str) -> str:
    return artifact_key("conversations", conversation_id, "turns")


def doc_id_for(name: str, data: bytes) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", PurePath(name).stem.lower()).strip("-")[:40] or "doc"
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}"


def chunk_text(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Paragraphs (blank-line separated), merged while small; a markdown heading starts a new chunk.

    A paragraph longer than the limit is split at sentence ends.
    """
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n|\n(?=#)", text):
        flat = " ".join(block.split())
        while len(flat) > limit:
            cut = max(flat.rfind(". ", 0, limit), flat.rfind("? ", 0, limit), flat.rfind("! ", 0, limit))
            cut = cut + 1 if cut > limit // 3 else limit
            paragraphs.append(flat[:cut].strip())
            flat = flat[cut:].strip()
        if flat:
            paragraphs.append(flat)
    chunks: list[str] = []
    for paragraph in paragraphs:
        after_heading = bool(chunks) and chunks[-1].startswith("#") and "\n" not in chunks[-1]
        small = bool(chunks) and len(chunks[-1]) + len(paragraph) + 1 <= limit // 2
        if not paragraph.startswith("#") and (after_heading or small):
            chunks[-1] = f"{chunks[-1]}\n{paragraph}"
        else:
            chunks.append(paragraph)
    return chunks


def turn_text(turn: TurnRecord) -> str:
    return f"User: {turn.user}\nAssistant: {turn.reply}"


def doc_passages(stored: bytes) -> tuple[list[Passage], torch.Tensor]:
    """A stored knowledge document's chunks as passages, and their vectors (parsing: run off the loop)."""
    doc = KnowledgeDoc.model_validate_json(stored)
    passages = [
        Passage(source="kb", ref=f"{doc.doc_id}#{c.index}", title=doc.name, text=c.text, score=0) for c in doc.chunks
    ]
    return passages, torch.tensor([c.embedding for c in doc.chunks])


def best_passages(candidates: list[Passage], blocks: list[torch.Tensor], query: torch.Tensor, k: int) -> list[Passage]:
    """The `k` candidates most similar to the query, above MIN_SCORE (tensor work: run off the loop)."""
    if not candidates:
        return []
    scores = (torch.cat(blocks) @ query).tolist()
    ranked = sorted(zip(scores, range(len(candidates)), strict=True), reverse=True)
    return [
        candidates[i].model_copy(update={"score": round(score, 4)}) for score, i in ranked[:k] if score >= MIN_SCORE
    ]


class KnowledgeActivities:
    def __init__(self, store: ArtifactStore, embedder: TextEmbedder) -> None:
        self.store = store
        self.embedder = embedder
        self._vectors: LRUCache[str, torch.Tensor] = LRUCache(CACHE_SIZE)  # text sha256 → unit vector
        self._docs: LRUCache[str, tuple[list[Passage], torch.Tensor]] = LRUCache(
            DOC_CACHE_SIZE
        )  # doc → chunks, vectors
        self._turns: LRUCache[str, str] = LRUCache(CACHE_SIZE)  # archived turn key → its text

    async def _embed(self, texts: list[str]) -> torch.Tensor:
        """Unit vectors for `texts`, reusing the ones this process has computed before."""
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        found = {k: v for k in keys if (v := self._vectors.get(k)) is not None}
        missing = list({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        if missing:
            vectors = await asyncio.to_thread(self.embedder.embed, [t for _, t in missing])
            for (key, _), vector in zip(missing, vectors, strict=True):
                found[key] = self._vectors[key] = vector.cpu()
        if not keys:
            return torch.empty(0, 384)
        return torch.stack([found[k] for k in keys])

    @activity.defn(name="ingest_document")
    async def ingest_document(self, doc: IngestDoc) -> DocSummary:
        """Chunk, embed and store one document; the same content always gets the same id."""
        data = await load(self.store, doc.source)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApplicationError(f"{doc.name} is not UTF-8 text", type="BadDocument", non_retryable=True) from exc
        pieces = chunk_text(text)
        if not pieces:
            raise ApplicationError(f"{doc.name} has no text", type="BadDocument", non_retryable=True)
        async with heartbeating(f"embedding {len(pieces)} chunks of {doc.name}"):
            vectors = await self._embed(pieces)
        doc_id = doc_id_for(doc.name, data)
        chunks = [
            Chunk(index=i, text=piece, embedding=[round(v, 6) for v in vector.tolist()])
            for i, (piece, vector) in enumerate(zip(pieces, vectors, strict=True))
        ]
        stored = KnowledgeDoc(doc_id=doc_id, name=doc.name, source=doc.source, chunks=chunks)
        key = kb_doc_key(doc_id, doc.knowledge)
        await self.store.put(key, stored.model_dump_json().encode(), "application/json")
        return DocSummary(doc_id=doc_id, name=doc.name, chunks=len(chunks), characters=len(text))

    async def _doc(self, key: str) -> tuple[list[Passage], torch.Tensor]:
        """One document's chunks and vectors, read once: a doc id names its content, so a key never changes."""
        if (cached := self._docs.get(key)) is not None:
            return cached
        self._docs[key] = await asyncio.to_thread(doc_passages, await self.store.read(key))
        return self._docs[key]

    async def _turn_text(self, key: str) -> str:
        """An archived turn as text, read once (a turn's record is final when archived)."""
        if (cached := self._turns.get(key)) is not None:
            return cached
        self._turns[key] = turn_text(TurnRecord.model_validate_json(await self.store.read(key)))
        return self._turns[key]

    @activity.defn(name="retrieve_passages")
    async def retrieve(self, request: RetrieveRequest) -> Retrieved:
        """The knowledge-base chunks and earlier turns most similar to the query."""
        candidates: list[Passage] = []
        blocks: list[torch.Tensor] = []
        async with heartbeating("retrieving"):
            if request.speaker is not None:  # a character's memory, not a knowledge base
                candidates = await character_memory(self.store, request.speaker)
                blocks.append(await self._embed([p.text for p in candidates]))
            else:
                await self._knowledge(request.knowledge, candidates, blocks)
            chunk_count = len(candidates)
            turn_keys = await self.store.keys(turns_prefix(request.conversation_id))
            earlier = [k for k in turn_keys if int(PurePath(k).stem) < request.before_turn]
            for key in earlier:
                ref = f"turn {int(PurePath(key).stem)}"
                text = await self._turn_text(key)
                candidates.append(Passage(source="turn", ref=ref, title=ref, text=text, score=0))
            if not candidates:
                return Retrieved(passages=[], searched_turns=0, searched_chunks=0)
            blocks.append(await self._embed([p.text for p in candidates[chunk_count:]]))
            query = (await self._embed([request.query]))[0]
            passages = await asyncio.to_thread(best_passages, candidates, blocks, query, request.k)
        return Retrieved(passages=passages, searched_turns=len(earlier), searched_chunks=chunk_count)

    async def _knowledge(self, knowledge: str | None, candidates: list[Passage], blocks: list[torch.Tensor]) -> None:
        """The knowledge base's chunks and their vectors, onto `candidates` and `blocks`."""
        prefix = kb_prefix(knowledge)
        doc_keys = await self.store.keys(prefix)
        cached = set(self._docs.keys())
        for key in {k for k in cached if k.startswith(prefix + "/")} - set(doc_keys):  # removed from the base
            self._docs.pop(key, None)
        for key in doc_keys:
            passages, vectors = await self._doc(key)
            candidates += passages
            blocks.append(vectors)

    @activity.defn(name="rank_passages")
    async def rank_passages(self, request: RankPassagesRequest) -> ArtifactRef:
        """Each search's `k` passages most similar to its query, as `retrieve` ranks (every text embedded in one
        batch); the answer stored at `request.key`."""
        async with heartbeating("ranking passages"):
            searches = PassageSearches.model_validate_json(await load(self.store, request.searches)).searches
            texts = [t for s in searches.values() for t in (s.query, *(p.text for p in s.passages))]
            vectors = await self._embed(texts)

            def rank() -> Ranked:
                found, at = {}, 0
                for name, search in searches.items():
                    query, block = vectors[at], vectors[at + 1 : at + 1 + len(search.passages)]
                    found[name] = best_passages(search.passages, [block], query, request.k)
                    at += 1 + len(search.passages)
                return Ranked(found=found)

            ranked = await asyncio.to_thread(rank)
            return await self.store.put(request.key, ranked.model_dump_json().encode(), "application/json")

    @activity.defn(name="rank_feeds_by_meaning")
    async def rank_feeds_by_meaning(self, request: RankRequest) -> ArtifactRef:
        """A life's feeds of a tick (`activities.life_feeds`), how alike measured by MiniLM: every member's
        interests and every candidate post embedded once (cached), one product per reader; stored as the tick's."""
        async with heartbeating(f"feeds of tick {request.tick} by meaning"):
            cast = Cast.model_validate_json(await load(self.store, request.cast))
            state = LifeState.model_validate_json(await load(self.store, request.state))
            ranker = Ranker(cast, state, request.tick)
            interests = interests_text(cast)
            members = {name: row for row, name in enumerate(interests)}
            vectors = await self._embed([*interests.values(), *(p.text for p in ranker.pool)])
            ranker.meaning = Meaning(members, vectors[: len(members)], vectors[len(members) :])
            feeds = await asyncio.to_thread(feeds_of, ranker, request.active, request.events, request.feed_size)
            key = life_key(request.life_id, "feeds", f"{request.tick:04d}.json")
            stored = Feeds(tick=request.tick, feeds=feeds).model_dump_json().encode()
            return await self.store.put(key, stored, "application/json")

    def activities(self) -> list:
        return [self.ingest_document, self.retrieve, self.rank_passages, self.rank_feeds_by_meaning]

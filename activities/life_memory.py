"""A life's memory: what each character remembers, searched the conversation pipeline's way, and the reflections it
writes every few ticks.

A character remembers its own posts (the world's and the life's), the replies and quotes it received, what it read
in its feeds of the last `READ_TICKS` ticks, and its reflections. Each tick, `gather_memories` stores one search per
active character (its query: what it reads now) over those memories; `rank_passages` on the scoring queue
(`activities.knowledge`, MiniLM, as a conversation's retrieval) keeps the best, or, with no scoring worker,
`rank_passages_lexically` here does by shared words. A conversation with a character (`Speaker`) searches the same
memories, its profile first (`character_memory`).

    lives/<life>/memory/<NNNN>-searches.json       PassageSearches of the tick
    lives/<life>/memory/<NNNN>-reflections.json    Remembered: each active character's latest reflection
    lives/<life>/memory/<NNNN>-recalled.json       Ranked: the memories each one recalls
    lives/<life>/reflections/<NNNN>-<BBB>.json     the reflections a batch wrote
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from pydantic import BaseModel, TypeAdapter
from temporalio import activity

from activities.heartbeat import heartbeating
from activities.life import latest_state, life_key, read_world
from activities.parsed import Parsed
from activities.prompts import render
from activities.providers import Providers
from kit.storage import ArtifactStore, load
from models.artifacts import ArtifactRef
from models.conversation import Passage, PassageSearch, PassageSearches, Ranked, RankPassagesRequest, Speaker
from models.life import Cast, CastMember, Feeds, LifeState, Post, life_id
from models.life_memory import (
    Gathered,
    GatherRequest,
    Reflected,
    Reflection,
    ReflectionContext,
    Reflections,
    ReflectRequest,
    Remembered,
)
from models.usage import Metered

READ_TICKS = 6  # ticks of feeds a character remembers reading
KEEP = {"post": 20, "reply": 20, "read": 24, "reflection": 4}  # the latest of each a search looks through
WORD = re.compile(r"[a-z0-9]{3,}")
SYSTEM = "You write the private reflections of the characters of a generated world's social network. Stay in character."
REFLECTIONS = TypeAdapter(list[Reflection])


def _memory(ref: str, title: str, text: str) -> Passage:
    return Passage(source="memory", ref=ref, title=title, text=text, score=0)


class Recollection:
    """Everything the life remembers, indexed once per tick: each character's posts and the replies to them."""

    def __init__(self, state: LifeState, reads: list[Feeds], reflections: list[Reflection]) -> None:
        self.authored: dict[str, list[Post]] = {}
        self.answers: dict[str, list[Post]] = {}  # author → the replies and quotes others made to its posts
        for post in state.posts.values():
            self.authored.setdefault(post.username, []).append(post)
        for post in state.posts.values():
            answered = state.posts.get(post.reply_to or post.quote_of or "")
            if answered is not None and answered.username != post.username:
                self.answers.setdefault(answered.username, []).append(post)
        self.reads, self.reflections = reads, reflections

    def of(self, username: str) -> list[Passage]:
        """One character's memories: the latest of each kind."""
        own = self.authored.get(username, [])[-KEEP["post"] :]
        passages = [_memory(p.id, f"I wrote (post {p.id})", p.text) for p in own]
        for p in self.answers.get(username, [])[-KEEP["reply"] :]:
            passages.append(_memory(p.id, f"@{p.username} answered me (post {p.id})", p.text))
        seen, read = {p.ref for p in passages}, []
        for feeds in reversed(self.reads):  # latest first
            for item in feeds.feeds[username].items if username in feeds.feeds else []:
                if item.id not in seen:
                    seen.add(item.id)
                    read.append(_memory(item.id, f"I read @{item.username} (post {item.id})", item.text))
        passages += read[: KEEP["read"]]
        mine = [r for r in self.reflections if r.username == username][-KEEP["reflection"] :]
        passages += [_memory(f"reflection {r.tick}", f"I reflected (tick {r.tick})", r.text) for r in mine]
        return passages


def query(feeds: Feeds, member: CastMember) -> str:
    """What a character searches its memory for: what it reads now (events first) and its interests."""
    feed = feeds.feeds.get(member.username)
    read = [e.text for e in feed.events] + [i.text for i in feed.items[:3]] if feed else []
    return " ".join([*read, *member.interests]) or member.display_name or member.username


def _words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def lexical_best(search: PassageSearch, k: int) -> list[Passage]:
    """The `k` passages sharing most words with the query (cosine of word sets): the pure-Python stand-in for
    MiniLM when no scoring worker polls."""
    asked = _words(search.query)
    scored = []
    for index, passage in enumerate(search.passages):
        words = _words(passage.text)
        if shared := len(asked & words):
            scored.append((shared / math.sqrt(len(asked) * len(words)), -index, passage))
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    return [p.model_copy(update={"score": round(score, 4)}) for score, _, p in scored[:k]]


async def reflections_of(store: ArtifactStore, life: str, before: int) -> list[Reflection]:
    """The life's reflections written before tick `before`, oldest first."""
    keys = sorted(await store.keys(life_key(life, "reflections") + "/"))
    found = []
    for key in keys:
        if int(key.rsplit("/", 1)[-1][:4]) < before:
            found += REFLECTIONS.validate_json(await store.read(key))
    return found


async def reads_of(store: ArtifactStore, life: str, before: int) -> list[Feeds]:
    """The feeds of the `READ_TICKS` ticks before `before`, oldest first."""
    keys = set(await store.keys(life_key(life, "feeds") + "/"))
    wanted = [life_key(life, "feeds", f"{t:04d}.json") for t in range(max(1, before - READ_TICKS), before)]
    return [Feeds.model_validate_json(await store.read(key)) for key in wanted if key in keys]


async def character_memory(store: ArtifactStore, speaker: Speaker) -> list[Passage]:
    """What a conversation with a character searches: its profile, its posts (the world's and its life's), the
    replies it received, what it read lately and its reflections (nothing for a character the world lacks)."""
    cast, posts = await read_world(store, speaker.world_id, only=speaker.username)
    if not cast.members:
        return []
    me = cast.members[0]
    profile = f"{me.display_name}: {me.bio} Interests: {', '.join(me.interests)}. Speaks: {me.speaking_style}."
    lived = life_id(speaker.world_id)
    found = await latest_state(store, lived)
    state = found[0] if found else LifeState(life_id=lived, world_id=speaker.world_id, posts=posts)
    reads = await reads_of(store, lived, state.tick + 1)
    recollection = Recollection(state, reads, await reflections_of(store, lived, state.tick + 1))
    return [_memory("profile", "my profile", profile), *recollection.of(speaker.username)]


def _latest(reflections: Iterable[Reflection]) -> dict[str, Reflection]:
    latest: dict[str, Reflection] = {}
    for reflection in reflections:
        latest[reflection.username] = reflection
    return latest


class LifeMemoryActivities:
    def __init__(self, providers: Providers, store: ArtifactStore) -> None:
        self.providers = providers
        self.store = store
        self.parsed = Parsed(store)  # a tick's cast, state and memories, parsed once for all its batches

    def storage_steps(self) -> list:
        return [self.gather_memories, self.rank_passages_lexically]

    def model_steps(self) -> list:
        return [self.reflect]

    async def _json(self, key: str, model: BaseModel) -> ArtifactRef:
        return await self.store.put(key, model.model_dump_json().encode(), "application/json")

    @activity.defn(name="gather_memories")
    async def gather_memories(self, request: GatherRequest) -> Gathered:
        """Each active character's memory search of the tick, and its latest reflection, stored."""
        async with heartbeating(f"memories of tick {request.tick}"):
            life, tick = request.life_id, request.tick
            cast = Cast.model_validate_json(await load(self.store, request.cast))
            state = LifeState.model_validate_json(await load(self.store, request.state))
            feeds = Feeds.model_validate_json(await load(self.store, request.feeds))
            reflections = await reflections_of(self.store, life, tick)
            recollection = Recollection(state, await reads_of(self.store, life, tick), reflections)
            members = {m.username: m for m in cast.members}
            searches = PassageSearches(
                searches={
                    u: PassageSearch(query=query(feeds, members[u]), passages=recollection.of(u))
                    for u in request.active
                    if u in members
                }
            )
            latest = _latest(reflections)
            remembered = Remembered(tick=tick, reflections={u: latest[u] for u in request.active if u in latest})
            memory = f"{tick:04d}"
            return Gathered(
                searches=await self._json(life_key(life, "memory", f"{memory}-searches.json"), searches),
                reflections=await self._json(life_key(life, "memory", f"{memory}-reflections.json"), remembered),
                ranked_key=life_key(life, "memory", f"{memory}-recalled.json"),
            )

    @activity.defn(name="rank_passages_lexically")
    async def rank_passages_lexically(self, request: RankPassagesRequest) -> ArtifactRef:
        """`rank_passages` by shared words, for a deployment without a scoring worker."""
        async with heartbeating("ranking memories by their words"):
            searches = PassageSearches.model_validate_json(await load(self.store, request.searches)).searches
            ranked = Ranked(found={name: lexical_best(search, request.k) for name, search in searches.items()})
            return await self._json(request.key, ranked)

    @activity.defn(name="reflect")
    async def reflect(self, request: ReflectRequest) -> Metered[Reflected]:
        """One structured call: a short reflection for each character of the batch, on its recent posts, the
        replies it got and what it recalls; stored under the life's keys."""
        cast = await self.parsed.get(request.cast, Cast)
        state = await self.parsed.get(request.state, LifeState)
        found = (await self.parsed.get(request.recalled, Ranked)).found if request.recalled else {}
        members = {m.username: m for m in cast.members}
        recollection = Recollection(state, [], [])
        batch = [members[u] for u in request.usernames if u in members]
        ctx = ReflectionContext(
            tick=request.tick,
            world_name=cast.world_name,
            characters=batch,
            posts={m.username: recollection.authored.get(m.username, [])[-3:] for m in batch},
            replies={m.username: recollection.answers.get(m.username, [])[-3:] for m in batch},
            memories={m.username: found.get(m.username, []) for m in batch},
        )
        async with heartbeating(f"reflections of tick {request.tick}, batch {request.batch}"):
            called = await self.providers.for_request(request).structured(
                Reflections, SYSTEM, _prompt(ctx), ctx, request.max_cost_usd
            )
        written = {}
        for note in called.value.reflections:
            if note.username in ctx.posts and note.text.strip():
                written.setdefault(note.username, " ".join(note.text.split()))
        notes = [
            Reflection(username=m.username, tick=request.tick, text=written[m.username])
            for m in batch
            if m.username in written
        ]
        key = life_key(request.life_id, "reflections", f"{request.tick:04d}-{request.batch:03d}.json")
        ref = await self.store.put(key, REFLECTIONS.dump_json(notes), "application/json")
        return called.carrying(Reflected(reflections=ref, count=len(notes)))


def _prompt(ctx: ReflectionContext) -> str:
    blocks = []
    for who in ctx.characters:
        lines = [f"  I WROTE: {p.text}" for p in ctx.posts[who.username]]
        lines += [f"  @{p.username} ANSWERED: {p.text}" for p in ctx.replies[who.username]]
        lines += [f"  I RECALL ({m.title}): {m.text}" for m in ctx.memories[who.username]]
        lived = "\n".join(lines) or "  (a quiet stretch)"
        blocks.append(f"@{who.username} ({who.display_name}): {who.bio} Speaks: {who.speaking_style}.\n{lived}")
    return render("life_reflections", world=ctx.world_name, tick=ctx.tick, characters="\n\n".join(blocks))

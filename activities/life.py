"""Activities of a world's life: open it from the world's stored characters, rank the tick's feeds, decide a batch
of characters' actions with one structured call, and apply a tick's actions to the stored life.

Everything is stored under `lives/<life id>/` (claim check: the workflow passes `ArtifactRef`s):

    lives/<life>/cast.json                        Cast
    lives/<life>/state/<NNNN>.json                LifeState at the end of tick NNNN (0000: the world's own posts)
    lives/<life>/feeds/<NNNN>.json                Feeds of the tick
    lives/<life>/actions/<NNNN>-<BBB>.json        the actions a batch decided
    lives/<life>/pictures/<NNNN>-<username>.<ext>  a post's picture (made on the image queue)

Keys are deterministic, so a retried step overwrites its own file; applying is keyed by action id, so applying a
batch again adds nothing.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, TypeAdapter
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.life_feeds import rank
from activities.parsed import Parsed
from activities.prompts import render
from activities.providers import Providers
from activities.providers.base import GeneratedBytes
from activities.purchases import Spool, bought_once
from kit.life_layout import life_key, picture_key, state_key
from kit.storage import ArtifactStore, load, make_ref, world_key
from kit.world_layout import read, stored_world
from models.artifacts import ArtifactRef
from models.conversation import Ranked
from models.life import (
    ON_PEOPLE,
    ON_POSTS,
    WRITES,
    Action,
    ActionKind,
    Applied,
    ApplyRequest,
    Cast,
    CastMember,
    Choice,
    Decided,
    DecideRequest,
    DecisionContext,
    Decisions,
    Feed,
    Feeds,
    LifeState,
    Memory,
    Opened,
    OpenLifeRequest,
    PictureAsk,
    Post,
    PostPictureRequest,
    RankRequest,
    action_id,
)
from models.life_memory import Remembered
from models.usage import Metered
from models.world import PORTRAIT, CharacterDetail, PostDetail, WorldDescription

SYSTEM = "You decide what the characters of a generated world's social network do next. Stay in character."
ACTIONS = TypeAdapter(list[Action])


def _weight(username: str, posts: int) -> float:
    """How active a character is: more for those who wrote more, with a steady per-character spread."""
    spread = int(hashlib.sha256(username.encode()).hexdigest()[:4], 16) / 0xFFFF
    return round(0.5 + 0.25 * posts + spread, 4)


async def read_world(store: ArtifactStore, world_id: str, only: str | None = None) -> tuple[Cast, dict[str, Post]]:
    """The world's cast (from its profiles) and its own posts (as tick 0's), or only the character `only`'s."""
    world = stored_world(world_id, await store.keys(world_key(world_id) + "/"))
    cast, posts = Cast(world_id=world_id, members=[]), {}
    if world.description:
        described = await read(store, world.description, WorldDescription)
        cast.world_name, cast.visual_style = described.name, described.visual_style
    for username, stored in world.characters.items():
        if stored.profile is None or only not in (None, username):
            continue
        profile = await read(store, stored.profile, CharacterDetail)
        for number, key in sorted(stored.posts.items()):
            post = await read(store, key, PostDetail)
            pid = f"0:{username}:{number}"
            posts[pid] = Post(id=pid, username=username, text=post.content, tick=0)
        cast.members.append(
            CastMember(
                username=username,
                display_name=profile.display_name,
                bio=profile.bio,
                speaking_style=profile.speaking_style,
                interests=profile.interests,
                activity=_weight(username, len(stored.posts)),
            )
        )
    return cast, posts


async def latest_state(store: ArtifactStore, life_id: str) -> tuple[LifeState, ArtifactRef] | None:
    """The life's state as of its latest stored tick (None: it never opened)."""
    ticks = sorted(await store.keys(life_key(life_id, "state") + "/"))
    if not ticks:
        return None
    data = await store.read(ticks[-1])
    return LifeState.model_validate_json(data), make_ref(ticks[-1], data, "application/json")


class LifeActivities:
    def __init__(self, providers: Providers, store: ArtifactStore, spool: Spool | None = None) -> None:
        self.providers = providers
        self.store = store
        self.spool = spool  # where a bought picture waits for its store (the world's post pictures' way)
        self.parsed = Parsed(store)  # a tick's cast, feeds and memories, parsed once for all its batches

    def storage_steps(self) -> list:
        """The activities that only read and write the store (the storage queue's): no model call."""
        return [self.open_life, self.rank_feeds, self.apply_actions]

    async def _json(self, key: str, model: BaseModel) -> ArtifactRef:
        return await self.store.put(key, model.model_dump_json().encode(), "application/json")

    @activity.defn(name="open_life")
    async def open_life(self, request: OpenLifeRequest) -> Opened:
        """The cast from the world's profiles, and the life's state: its latest stored tick, or the world's own
        posts as tick 0."""
        async with heartbeating(f"opening the life of {request.world_id}"):
            cast, posts = await read_world(self.store, request.world_id)
            if not cast.members:
                raise ApplicationError(
                    f"world {request.world_id!r} has no characters to live", type="NoWorld", non_retryable=True
                )
            cast_ref = await self._json(life_key(request.life_id, "cast.json"), cast)
            if (lived := await latest_state(self.store, request.life_id)) is not None:  # on from its latest tick
                state, state_ref = lived
            else:
                state = LifeState(life_id=request.life_id, world_id=request.world_id, posts=posts)
                state_ref = await self._json(state_key(request.life_id, 0), state)
            members = [(m.username, m.activity) for m in cast.members]
            return Opened(cast=cast_ref, members=members, state=state_ref, tick=state.tick)

    @activity.defn(name="rank_feeds")
    async def rank_feeds(self, request: RankRequest) -> ArtifactRef:
        """Every active character's feed of the tick (`activities.life_feeds`), stored."""
        async with heartbeating(f"feeds of tick {request.tick}"):
            cast = Cast.model_validate_json(await load(self.store, request.cast))
            state = LifeState.model_validate_json(await load(self.store, request.state))
            feeds = rank(cast, state, request.tick, request.active, request.events, request.feed_size)
            key = life_key(request.life_id, "feeds", f"{request.tick:04d}.json")
            return await self._json(key, Feeds(tick=request.tick, feeds=feeds))

    @activity.defn(name="decide_actions")
    async def decide_actions(self, request: DecideRequest) -> Metered[Decided]:
        """One structured call decides an action for each character of the batch, from what it read; actions
        that name a post it did not read or a character that is not in the world are turned down."""
        cast = await self.parsed.get(request.cast, Cast)
        feeds = (await self.parsed.get(request.feeds, Feeds)).feeds
        members = {m.username: m for m in cast.members}
        batch = [members[u] for u in request.usernames if u in members]
        ctx = DecisionContext(
            tick=request.tick,
            world_name=cast.world_name,
            characters=batch,
            feeds={m.username: feeds.get(m.username, Feed(username=m.username)) for m in batch},
            interests={m.username: m.interests for m in cast.members},
        )
        if request.memory is not None:
            await recall(self.parsed, request.memory, ctx)
        async with heartbeating(f"decisions of tick {request.tick}, batch {request.batch}"):
            called = await self.providers.for_request(request).structured(
                Decisions, SYSTEM, _prompt(ctx), ctx, request.max_cost_usd
            )
        actions = checked(request.tick, ctx, called.value, set(members))
        key = life_key(request.life_id, "actions", f"{request.tick:04d}-{request.batch:03d}.json")
        ref = await self.store.put(key, ACTIONS.dump_json(actions), "application/json")
        counts: dict[str, int] = {}
        for action in actions:
            counts[action.kind.value] = counts.get(action.kind.value, 0) + 1
        pictures = [PictureAsk(post=a.id, username=a.username, description=a.picture) for a in actions if a.picture]
        return called.carrying(Decided(actions=ref, counts=counts, pictures=pictures))

    @activity.defn(name="life_post_picture")
    async def post_picture(self, request: PostPictureRequest) -> Metered[ArtifactRef]:
        """A post's picture, as a world's post gets its own (the `post_image` prompt, portrait size), bought once
        (a retry takes it from the spool) and stored under the life, keyed by tick and author."""
        cast = await self.parsed.get(request.cast, Cast)
        prompt = render("post_image", image_prompt=request.ask.description, visual_style=cast.visual_style)
        key = picture_key(request.life_id, request.tick, request.ask.username, PORTRAIT.format)
        provider = self.providers.for_request(request)

        async def buy() -> Metered[GeneratedBytes]:
            async with heartbeating(f"picture of post {request.ask.post}"):
                return await provider.generate_image(prompt, PORTRAIT, [], None, request.max_cost_usd)

        if self.spool is None:
            raise ApplicationError("this worker has no spool for pictures", type="NoSpool", non_retryable=True)
        called, stored = await bought_once(self.spool, self.store, key, buy)
        return called.carrying(stored)

    @activity.defn(name="apply_actions")
    async def apply_actions(self, request: ApplyRequest) -> Applied:
        """The tick's actions onto the life's state, each once by its id; the new state stored as the tick's."""
        async with heartbeating(f"applying tick {request.tick}"):
            state = LifeState.model_validate_json(await load(self.store, request.state))
            actions = [a for ref in request.batches for a in ACTIONS.validate_json(await load(self.store, ref))]
            counts, already = apply(state, request, actions)
            ref = await self._json(state_key(request.life_id, request.tick), state)
            return Applied(state=ref, counts=counts, already=already, posts=len(state.posts))


async def recall(parsed: Parsed, memory: Memory, ctx: DecisionContext) -> None:
    """The batch's memories and latest reflections into `ctx`."""
    found = (await parsed.get(memory.recalled, Ranked)).found
    reflections = (await parsed.get(memory.reflections, Remembered)).reflections
    for who in ctx.characters:
        ctx.memories[who.username] = found.get(who.username, [])
        if (reflection := reflections.get(who.username)) is not None:
            ctx.reflections[who.username] = reflection.text


def _remembers(ctx: DecisionContext, username: str) -> str:
    lines = [f"  REMEMBERS ({m.title}): {m.text}" for m in ctx.memories.get(username, [])]
    if reflection := ctx.reflections.get(username):
        lines.append(f"  LATEST REFLECTION: {reflection}")
    return "".join(f"{line}\n" for line in lines)


def _prompt(ctx: DecisionContext) -> str:
    blocks = []
    for who in ctx.characters:
        feed = ctx.feeds[who.username]
        read = "\n".join(f"  [{i.id}] @{i.username}: {i.text}" for i in feed.items) or "  (nothing yet)"
        events = "".join(f"  EVENT: {e.text}\n" for e in feed.events)
        blocks.append(
            f"@{who.username} ({who.display_name}): {who.bio} Interests: {', '.join(who.interests)}. "
            f"Speaks: {who.speaking_style}. Follows: {', '.join(feed.following) or 'nobody'}.\n"
            f"{_remembers(ctx, who.username)}{events}{read}"
        )
    return render("life_decisions", world=ctx.world_name, tick=ctx.tick, characters="\n\n".join(blocks))


def checked(tick: int, ctx: DecisionContext, decided: Decisions, cast: set[str]) -> list[Action]:
    """One action per character of the batch, in its order, with its stable id: a character the model left out
    does nothing; a reply, quote, like or repost of a post it did not read, or a follow of someone not in the
    world, is turned down (a reply or quote then stands as a post of its own, the rest as nothing)."""
    chosen: dict[str, Choice] = {}
    for choice in decided.actions:
        chosen.setdefault(choice.username, choice)
    actions = []
    for who in ctx.characters:
        choice = chosen.get(who.username) or Choice(username=who.username, kind=ActionKind.NONE)
        kind, post, target = choice.kind, choice.post, choice.target
        read = {item.id for item in ctx.feeds[who.username].items}
        if kind in ON_POSTS and post not in read:
            kind, post = (ActionKind.POST if kind in WRITES and choice.text.strip() else ActionKind.NONE), None
        if kind in ON_PEOPLE and (target not in cast or target == who.username):
            kind, target = ActionKind.NONE, None
        if kind in WRITES and not choice.text.strip():
            kind = ActionKind.NONE
        actions.append(
            Action(
                id=action_id(tick, who.username),
                tick=tick,
                username=who.username,
                kind=kind,
                text=choice.text if kind in WRITES else "",
                post=post if kind in ON_POSTS else None,
                target=target if kind in ON_PEOPLE else None,
                picture=_asked(choice.picture) if kind == choice.kind == ActionKind.POST else None,
            )
        )
    return actions


def _asked(picture: str | None) -> str | None:
    """What a post's asked-for picture shows, in one line (None: it asks for none)."""
    picture = " ".join((picture or "").split())[:300]
    return picture or None


def _add(listing: dict[str, list[str]], key: str, value: str) -> bool:
    values = listing.setdefault(key, [])
    if value in values:
        return False
    values.append(value)
    return True


def apply(state: LifeState, request: ApplyRequest, actions: list[Action]) -> tuple[dict[str, int], int]:
    """`actions` onto `state` (in place), each action id once; the tick's events recorded once by id. Answers
    the actions newly applied, by kind, and how many were there already."""
    known_events = {e.id for e in state.events}
    state.events += [e for e in request.events if e.id not in known_events]
    done = set(state.applied)
    counts: dict[str, int] = {}
    already = 0
    for action in actions:
        if action.id in done:
            already += 1
            continue
        done.add(action.id)
        state.applied.append(action.id)
        counts[action.kind.value] = counts.get(action.kind.value, 0) + 1
        if action.kind in WRITES:
            state.posts[action.id] = Post(
                id=action.id,
                username=action.username,
                text=action.text,
                tick=action.tick,
                reply_to=action.post if action.kind == ActionKind.REPLY else None,
                quote_of=action.post if action.kind == ActionKind.QUOTE else None,
                picture=request.pictures.get(action.id),
            )
            if action.post:
                state.replies[action.post] = state.replies.get(action.post, 0) + 1
        elif action.kind == ActionKind.LIKE and action.post:
            _add(state.likes, action.post, action.username)
        elif action.kind == ActionKind.REPOST and action.post:
            _add(state.reposts, action.post, action.username)
        elif action.kind == ActionKind.FOLLOW and action.target:
            _add(state.follows, action.username, action.target)
        elif action.kind == ActionKind.UNFOLLOW and action.target:
            following = state.follows.get(action.username, [])
            if action.target in following:
                following.remove(action.target)
    state.tick = max(state.tick, request.tick)
    return counts, already

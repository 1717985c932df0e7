"""What the Studio shows of a living world, read from the life's stored state (`kit.life_layout`): its timeline as
threads (replies under the post they answer, quotes linked to theirs), its characters with their followers, the
follower graph and the actions per tick, both as server-drawn SVG geometry (no script draws them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pydantic import ValidationError

from kit.life_layout import counts_of, life_key, read_state, tick_actions
from kit.storage import ArtifactStore
from models.life import Cast, CastMember, LifeState, LifeStatus, Post

SHOWN_POSTS = 40  # the threads of the latest posts are shown
CHART_TICKS = 40  # the chart shows the latest ticks
GRAPH_NODES = 60  # the graph shows the characters most involved in following
KINDS = ("post", "reply", "quote", "like", "repost", "follow", "unfollow", "none")
_COUNTS: dict[tuple[str, int], dict[str, int]] = {}  # a done tick's actions never change: read once per process


@dataclass
class Thread:
    post: Post
    replies: list[Thread] = field(default_factory=list)
    likes: int = 0
    reposts: int = 0
    quoted: Post | None = None  # the post it quotes
    answered: Post | None = None  # the post it replies to (shown where the reply stands alone)


@dataclass
class Bar:
    tick: int
    parts: list[tuple[str, int, float, float]]  # kind, count, y, height (in the chart's units)
    total: int


@dataclass
class Graph:
    nodes: list[tuple[str, float, float, float]]  # username, x, y, radius
    edges: list[tuple[float, float, float, float]]  # from x, y → to x, y (shortened to the nodes' rims)
    size: int = 420


@dataclass
class LifeData:
    state: LifeState
    cast: dict[str, CastMember]
    threads: list[Thread]
    bars: list[Bar]
    peak: int
    graph: Graph

    def followers(self, username: str) -> list[str]:
        return sorted(who for who, whom in self.state.follows.items() if username in whom)

    def following(self, username: str) -> list[str]:
        return sorted(self.state.follows.get(username, []))

    def name(self, username: str) -> str:
        member = self.cast.get(username)
        return member.display_name if member and member.display_name else username

    def posts_of(self, username: str, most: int = 20) -> list[Thread]:
        """A character's latest posts, newest first, each with the post it replies to or quotes."""
        posts = self.state.posts
        mine = [p for p in posts.values() if p.username == username][-most:][::-1]
        return [
            Thread(
                p,
                likes=len(self.state.likes.get(p.id, [])),
                reposts=len(self.state.reposts.get(p.id, [])),
                quoted=posts.get(p.quote_of or ""),
                answered=posts.get(p.reply_to or ""),
            )
            for p in mine
        ]

    def post(self, post_id: str | None) -> Post | None:
        return self.state.posts.get(post_id or "")


def threads_of(state: LifeState, shown: int = SHOWN_POSTS) -> list[Thread]:
    """The threads the latest `shown` posts are in, the most recently active first; each reply under the post it
    answers (the whole thread of a shown reply, from its first post)."""
    posts = state.posts
    order = {pid: n for n, pid in enumerate(posts)}

    def root(pid: str) -> str:
        seen = set()
        while (up := posts[pid].reply_to) in posts and pid not in seen:
            seen.add(pid)
            pid = up
        return pid

    roots: dict[str, int] = {}  # root → its latest post's place
    for pid in list(posts)[-shown:]:
        top = root(pid)
        roots[top] = max(roots.get(top, -1), order[pid])
    children: dict[str, list[str]] = {}
    for pid, post in posts.items():
        if post.reply_to in posts:
            children.setdefault(post.reply_to, []).append(pid)

    def build(pid: str, depth: int = 0) -> Thread:
        post = posts[pid]
        thread = Thread(post, likes=len(state.likes.get(pid, [])), reposts=len(state.reposts.get(pid, [])))
        thread.quoted = posts.get(post.quote_of or "")
        if depth < 12:  # a very deep thread stops nesting
            thread.replies = [build(c, depth + 1) for c in children.get(pid, [])]
        return thread

    return [build(pid) for pid in sorted(roots, key=lambda r: -roots[r])]


async def tick_counts(store: ArtifactStore, life_id: str, last: int) -> list[tuple[int, dict[str, int]]]:
    """Actions per kind of each of the latest done ticks (read once each)."""
    counted = []
    for tick in range(max(1, last - CHART_TICKS + 1), last + 1):
        if (life_id, tick) not in _COUNTS:
            if len(_COUNTS) > 20_000:
                _COUNTS.clear()
            _COUNTS[life_id, tick] = counts_of(await tick_actions(store, life_id, tick))
        counted.append((tick, _COUNTS[life_id, tick]))
    return counted


def bars_of(counted: list[tuple[int, dict[str, int]]], height: float = 100) -> tuple[list[Bar], int]:
    """Stacked bars (one per tick, its kinds from the bottom up) scaled to the busiest tick."""
    peak = max([sum(c.values()) for _, c in counted] or [0]) or 1
    bars = []
    for tick, counts in counted:
        y, parts = height, []
        for kind in KINDS:
            if n := counts.get(kind, 0):
                h = height * n / peak
                y -= h
                parts.append((kind, n, round(y, 2), round(h, 2)))
        bars.append(Bar(tick, parts, sum(counts.values())))
    return bars, peak


def graph_of(state: LifeState, usernames: list[str], size: int = 420) -> Graph:
    """The characters on a circle (those most involved in following, at most `GRAPH_NODES`), each sized by its
    followers, and an arrow for each follow between them."""
    followers = {u: 0 for u in usernames}
    involved = dict.fromkeys(usernames, 0)
    for who, whom in state.follows.items():
        for target in whom:
            followers[target] = followers.get(target, 0) + 1
            involved[target] = involved.get(target, 0) + 1
            involved[who] = involved.get(who, 0) + 1
    chosen = sorted(involved, key=lambda u: -involved[u])[:GRAPH_NODES]
    chosen = [u for u in usernames if u in chosen] + [u for u in chosen if u not in usernames]
    centre, ring = size / 2, size / 2 - 70  # room for the names at the sides
    at: dict[str, tuple[float, float, float]] = {}
    for n, user in enumerate(chosen):
        angle = 2 * math.pi * n / max(1, len(chosen)) - math.pi / 2
        radius = 5 + 3 * math.sqrt(followers.get(user, 0))
        at[user] = (round(centre + ring * math.cos(angle), 1), round(centre + ring * math.sin(angle), 1), radius)
    edges = []
    for who, whom in state.follows.items():
        for target in whom:
            if who in at and target in at and who != target:
                (x1, y1, r1), (x2, y2, r2) = at[who], at[target]
                length = math.hypot(x2 - x1, y2 - y1) or 1
                dx, dy = (x2 - x1) / length, (y2 - y1) / length
                edges.append(
                    (
                        round(x1 + dx * r1, 1),
                        round(y1 + dy * r1, 1),
                        round(x2 - dx * (r2 + 3), 1),
                        round(y2 - dy * (r2 + 3), 1),
                    )
                )
    return Graph([(u, x, y, r) for u, (x, y, r) in at.items()], edges, size)


async def read_cast(store: ArtifactStore, life_id: str) -> dict[str, CastMember]:
    try:
        cast = Cast.model_validate_json(await store.read(life_key(life_id, "cast.json")))
    except (ValidationError, OSError, KeyError):
        return {}
    return {m.username: m for m in cast.members}


async def life_data(store: ArtifactStore, status: LifeStatus) -> LifeData | None:
    """The life as of its status's tick (None: nothing stored yet)."""
    if status.state_ref is None:
        return None
    try:
        state = await read_state(store, status.state_ref)
    except (ValidationError, OSError, KeyError):
        return None
    cast = await read_cast(store, status.life_id)
    bars, peak = bars_of(await tick_counts(store, status.life_id, state.tick))
    return LifeData(state, cast, threads_of(state), bars, peak, graph_of(state, list(cast)))

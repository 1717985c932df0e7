"""Each active character's feed for a tick: recency, whom it follows, how like its interests the author's interests
and the post are, replies to its own posts, and a hot score from likes, replies and reposts. Injected events head
every feed of the tick they enter.

How alike is measured by MiniLM on the scoring queue (`KnowledgeActivities.rank_feeds_by_meaning` embeds each
member's interests and each candidate post once, with the conversation pipeline's cache, and passes `Meaning`), or,
with no scoring worker, here in pure Python by shared interests and words (`rank_feeds` on the storage queue). This
module loads no torch: `Meaning` only multiplies the vectors it is given."""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Callable
from typing import Any

from models.life import Cast, Feed, FeedItem, LifeEvent, LifeState, Post

WINDOW = 4  # ticks of posts a feed draws from (the world's own posts while the life is young)
CANDIDATES = 600  # the most recent posts considered each tick
WORD = re.compile(r"[a-z]{4,}")


def _words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def hot(state: LifeState, post_id: str) -> float:
    """Engagement: likes, replies and quotes (twice), reposts, on a log scale."""
    engaged = len(state.likes.get(post_id, [])) + 2 * state.replies.get(post_id, 0)
    return math.log1p(engaged + len(state.reposts.get(post_id, [])))


def candidates(state: LifeState, tick: int) -> list[Post]:
    """The posts a feed may show this tick: those of the last `WINDOW` ticks (the world's own when few)."""
    recent = [p for p in state.posts.values() if p.tick >= tick - WINDOW]
    if len(recent) < CANDIDATES // 4:
        recent = list(state.posts.values())
    return recent[-CANDIDATES:]


class Meaning:
    """MiniLM's unit vectors (rows) of each member's interests (`members`: username → row) and of each post of the
    pool, in the pool's order: how alike two are is their cosine (never below 0)."""

    def __init__(self, members: dict[str, int], interests: Any, posts: Any) -> None:
        self.members, self.interests, self.posts = members, interests, posts

    def of(self, username: str) -> tuple[Callable[[str], float], list[float]] | None:
        """How alike `username`'s interests are to each author's, and to each post of the pool (one product each)."""
        if (row := self.members.get(username)) is None:
            return None
        mine = self.interests[row]
        authors = [max(0.0, v) for v in (self.interests @ mine).tolist()]
        posts = [max(0.0, v) for v in (self.posts @ mine).tolist()] if len(self.posts) else []
        return lambda author: authors[self.members[author]] if author in self.members else 0.0, posts


class Ranker:
    """The feeds of one tick: the cast's interests, and each candidate post's words, recency, engagement and the
    author it answers, read once (a feed then only adds what depends on its reader: an O(readers x pool) loop)."""

    def __init__(self, cast: Cast, state: LifeState, tick: int, meaning: Meaning | None = None) -> None:
        self.state, self.tick, self.meaning = state, tick, meaning
        self.interests = {m.username: {i.lower() for i in m.interests} for m in cast.members}
        self.pool = candidates(state, tick)
        self.words = [_words(p.text) for p in self.pool]
        self.recency = [1.0 / (1 + max(0, tick - 1 - p.tick)) for p in self.pool]
        self.hot = [0.3 * hot(state, p.id) for p in self.pool]
        self.answers = [self._answered(p) for p in self.pool]  # whose post each one replies to or quotes

    def _answered(self, post: Post) -> str | None:
        answered = self.state.posts.get(post.reply_to or post.quote_of or "")
        return answered.username if answered is not None else None

    def _lexical(self, username: str) -> tuple[Callable[[str], float], list[float]]:
        """How alike by words: the interests shared with each author (Jaccard), its interests' words in each post."""
        own = self.interests.get(username, set())
        words = {w for i in own for w in _words(i)}
        shared: dict[str, float] = {}

        def alike(author: str) -> float:
            if (found := shared.get(author)) is None:
                theirs = self.interests.get(author, set())
                found = shared[author] = len(own & theirs) / max(1, len(own | theirs))
            return found

        return alike, [min(1.0, 0.25 * len(words & posted)) for posted in self.words]

    def scores(self, username: str, following: set[str]) -> list[tuple[float, Post]]:
        """How high each post of the pool by others ranks in `username`'s feed (who follows `following`): recency,
        followed, its interests alike the author's, the post alike its interests, an answer to it, hot."""
        likeness = self.meaning.of(username) if self.meaning is not None else None
        alike_author, about_post = likeness or self._lexical(username)
        ranked = []
        for index, post in enumerate(self.pool):
            author = post.username
            if author == username:
                continue
            alike = alike_author(author)
            followed = 1.0 if author in following else 0.0
            about = about_post[index]
            answered = 1.5 if self.answers[index] == username else 0.0
            score = self.recency[index] + followed + alike + 0.5 * about + answered + self.hot[index]
            ranked.append((score, post))
        return ranked

    def feed(self, username: str, events: list[LifeEvent], size: int) -> Feed:
        following = set(self.state.follows.get(username, []))
        best = heapq.nsmallest(size, self.scores(username, following), key=lambda s: (-s[0], s[1].id))
        items = [FeedItem(id=p.id, username=p.username, text=p.text, tick=p.tick, score=round(s, 4)) for s, p in best]
        return Feed(username=username, items=items, events=events, following=sorted(following))


def interests_text(cast: Cast) -> dict[str, str]:
    """What MiniLM embeds of each member: its interests in a line (its bio when it names none)."""
    return {m.username: ", ".join(m.interests) or m.bio or m.username for m in cast.members}


def rank(
    cast: Cast, state: LifeState, tick: int, active: list[str], events: list[LifeEvent], size: int
) -> dict[str, Feed]:
    """The feed of each active character by shared words: its `size` best posts by others, and the tick's events."""
    return feeds_of(Ranker(cast, state, tick), active, events, size)


def feeds_of(ranker: Ranker, active: list[str], events: list[LifeEvent], size: int) -> dict[str, Feed]:
    return {username: ranker.feed(username, events, size) for username in active}

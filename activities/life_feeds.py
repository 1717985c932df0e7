"""Each active character's feed for a tick, ranked in pure Python (no torch: it runs on the storage queue):
recency, whom it follows, the interests it shares with the author and the words of the post, replies to its own
posts, and a hot score from likes, replies and reposts. Injected events head every feed of the tick they enter."""

from __future__ import annotations

import heapq
import math
import re

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


class Ranker:
    """The feeds of one tick: the cast's interests, and each candidate post's words, recency, engagement and the
    author it answers, read once (a feed then only adds what depends on its reader: an O(readers x pool) loop)."""

    def __init__(self, cast: Cast, state: LifeState, tick: int) -> None:
        self.state, self.tick = state, tick
        self.interests = {m.username: {i.lower() for i in m.interests} for m in cast.members}
        self.pool = candidates(state, tick)
        self.words = [_words(p.text) for p in self.pool]
        self.recency = [1.0 / (1 + max(0, tick - 1 - p.tick)) for p in self.pool]
        self.hot = [0.3 * hot(state, p.id) for p in self.pool]
        self.answers = [self._answered(p) for p in self.pool]  # whose post each one replies to or quotes

    def _answered(self, post: Post) -> str | None:
        answered = self.state.posts.get(post.reply_to or post.quote_of or "")
        return answered.username if answered is not None else None

    def scores(self, username: str, following: set[str], words: set[str]) -> list[tuple[float, Post]]:
        """How high each post of the pool by others ranks in `username`'s feed (who follows `following`; `words`:
        of its interests): recency, followed, shared interests, its interests' words, an answer to it, hot."""
        own = self.interests.get(username, set())
        shared: dict[str, float] = {}
        ranked = []
        for index, post in enumerate(self.pool):
            author = post.username
            if author == username:
                continue
            if (alike := shared.get(author)) is None:
                theirs = self.interests.get(author, set())
                alike = shared[author] = len(own & theirs) / max(1, len(own | theirs))
            followed = 1.0 if author in following else 0.0
            about = min(1.0, 0.25 * len(words & self.words[index]))
            answered = 1.5 if self.answers[index] == username else 0.0
            score = self.recency[index] + followed + alike + 0.5 * about + answered + self.hot[index]
            ranked.append((score, post))
        return ranked

    def feed(self, username: str, events: list[LifeEvent], size: int) -> Feed:
        following = set(self.state.follows.get(username, []))
        words = {w for i in self.interests.get(username, set()) for w in _words(i)}
        best = heapq.nsmallest(size, self.scores(username, following, words), key=lambda s: (-s[0], s[1].id))
        items = [FeedItem(id=p.id, username=p.username, text=p.text, tick=p.tick, score=round(s, 4)) for s, p in best]
        return Feed(username=username, items=items, events=events, following=sorted(following))


def rank(
    cast: Cast, state: LifeState, tick: int, active: list[str], events: list[LifeEvent], size: int
) -> dict[str, Feed]:
    """The feed of each active character: its `size` best posts by others, and the tick's events."""
    ranker = Ranker(cast, state, tick)
    return {username: ranker.feed(username, events, size) for username in active}

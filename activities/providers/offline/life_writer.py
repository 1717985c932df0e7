"""Offline decisions of a world's life: each character acts, deterministically, from what it read this tick.

- an event in its feed: it posts about the event, naming it;
- else, a post in its feed by a character it does not follow and shares an interest with: sometimes it follows;
- else it replies to the top post of its feed (naming its author and quoting it), quotes it, likes it or
  reposts it, or posts about one of its own interests (and what it remembers best); with an empty feed it posts.

A post about an event asks for a picture of it, and so does every `PICTURE_EVERY`-th post of its own (by its roll).

What it writes after a reflection ends with the reflection's opening words: later decisions visibly read it. Its
reflections (`reflect`) look back on the replies it got, else its own latest post, else what it recalls.

The same feed, memory and tick give the same action, so tests can check the structure of a life, not just its count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from pydantic import BaseModel

from models.life import WRITES, ActionKind, CastMember, Choice, DecisionContext, Decisions, Feed, FeedItem
from models.life_memory import ReflectionContext, ReflectionNote, Reflections

SNIPPET = 60  # characters of a post a reply or quote repeats
PICTURE_EVERY = 3  # one in this many posts about an interest asks for a picture


def _roll(*parts: object) -> int:
    return int(hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def _snippet(text: str, most: int = SNIPPET) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def _shared(mine: list[str], theirs: list[str]) -> list[str]:
    own = {i.lower() for i in mine}
    return [i for i in theirs if i.lower() in own]


def _follow(who: CastMember, feed: Feed, ctx: DecisionContext) -> Choice | None:
    """A follow of the first author in its feed it does not follow yet and shares an interest with."""
    following = set(feed.following)
    for item in feed.items:
        if item.username in following or item.username == who.username:
            continue
        if shared := _shared(who.interests, ctx.interests.get(item.username, [])):
            text = f"following @{item.username} for the {shared[0]}"
            return Choice(username=who.username, kind=ActionKind.FOLLOW, target=item.username, text=text)
    return None


def _about(who: CastMember, roll: int) -> str:
    return who.interests[roll % len(who.interests)] if who.interests else "the world"


def _on_post(who: CastMember, top: FeedItem, roll: int) -> Choice:
    interest = _about(who, roll)
    kind = (ActionKind.REPLY,) * 5 + (ActionKind.QUOTE,) * 2 + (ActionKind.LIKE, ActionKind.REPOST)
    chosen = kind[roll % len(kind)]
    if chosen == ActionKind.REPLY:
        text = f'@{top.username} re "{_snippet(top.text)}": that reminds me of {interest}.'
    elif chosen == ActionKind.QUOTE:
        text = f'"{_snippet(top.text)}" (@{top.username}). Worth a thought, from someone into {interest}.'
    else:
        text = ""
    return Choice(username=who.username, kind=chosen, post=top.id, text=text)


def echo(reflection: str) -> str:
    """What a write after a reflection adds: the reflection's opening words."""
    return f' (As I reflected: "{_snippet(reflection, 48)}")'


def remembered(who: CastMember, feed: Feed, ctx: DecisionContext) -> Choice:
    """`decide_one`, then what it remembers: its latest reflection echoed in what it writes."""
    choice = decide_one(who, feed, ctx)
    if choice.kind in WRITES and (reflection := ctx.reflections.get(who.username)):
        choice.text += echo(reflection)
    return choice


def decide_one(who: CastMember, feed: Feed, ctx: DecisionContext) -> Choice:
    roll = _roll(ctx.tick, who.username, *(item.id for item in feed.items))
    if feed.events:
        event = feed.events[-1]
        text = f"About {event.text}: {who.display_name or who.username} on how it touches {_about(who, roll)}."
        picture = f"{event.text}, as {who.display_name or who.username} sees it"
        return Choice(username=who.username, kind=ActionKind.POST, text=text, picture=picture)
    if roll % 5 == 0 and (follow := _follow(who, feed, ctx)) is not None:
        return follow
    following = feed.following
    if roll % 41 == 0 and following:
        return Choice(username=who.username, kind=ActionKind.UNFOLLOW, target=following[0])
    if feed.items and roll % 10 != 9:
        return _on_post(who, feed.items[(roll // 10) % min(2, len(feed.items))], roll // 100)
    text = f"Thinking about {_about(who, roll)} today, tick {ctx.tick}. Anyone else?"
    if memories := ctx.memories.get(who.username):
        text = f'Thinking about {_about(who, roll)} today, tick {ctx.tick}; I remember "{_snippet(memories[0].text)}".'
    picture = f"{_about(who, roll)}, drawn by {who.username}" if roll % PICTURE_EVERY == 0 else None
    return Choice(username=who.username, kind=ActionKind.POST, text=text, picture=picture)


def decide(ctx: DecisionContext) -> Decisions:
    """One action per character of the batch, from its feed."""
    feeds = {who.username: ctx.feeds.get(who.username, Feed(username=who.username)) for who in ctx.characters}
    return Decisions(actions=[remembered(who, feeds[who.username], ctx) for who in ctx.characters])


def reflect_one(who: CastMember, ctx: ReflectionContext) -> ReflectionNote:
    theme = _about(who, _roll(ctx.tick, who.username))
    if replies := ctx.replies.get(who.username):
        anchor = f'@{replies[-1].username} answered me: "{_snippet(replies[-1].text, 80)}"'
    elif posts := ctx.posts.get(who.username):
        anchor = f'I wrote "{_snippet(posts[-1].text, 80)}"'
    elif memories := ctx.memories.get(who.username):
        anchor = f'I recall "{_snippet(memories[0].text, 80)}"'
    else:
        anchor = "it has been a quiet stretch"
    text = f"Tick {ctx.tick}, {who.username} on {theme}: {anchor}. I mean to say more about {theme}."
    return ReflectionNote(username=who.username, text=text)


def reflect(ctx: ReflectionContext) -> Reflections:
    """One reflection per character of the batch, from what it wrote, got and recalls."""
    return Reflections(reflections=[reflect_one(who, ctx) for who in ctx.characters])


WRITERS: dict[type[BaseModel], Callable[..., BaseModel]] = {Decisions: decide, Reflections: reflect}

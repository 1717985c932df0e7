"""A life's events, as the run's observer finds them (`activities.run_events`): each done tick's actions, read from
that tick's files only (`kit.life_layout`), become `post.created`, `like.created`, `repost.created`,
`follow.created` and `follow.deleted` in the order they were decided (a post with a picture names it as its `image`,
as a world's posts do, and an `image.created` of kind `post` follows it), then `tick.completed` (its actions by kind,
the life's posts, its spend when the tick was seen). Tick 0's are the world's own posts, so that every reply's
`reply_to` names a post sent before it. A big tick goes out over several looks, `PER_LOOK` events at a time;
`Seen` keeps only the last tick sent, how many of the next one's events went out, and the posts so far."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kit.life_layout import counts_of, pictures_of_tick, state_at, tick_actions, tick_done
from kit.storage import ArtifactStore
from models.life import WRITES, Action, ActionKind

PER_LOOK = 500  # events a look sends at most: a batch stays a small payload in the events workflow's history
EVENT_OF = {
    ActionKind.LIKE: "like.created",
    ActionKind.REPOST: "repost.created",
    ActionKind.FOLLOW: "follow.created",
    ActionKind.UNFOLLOW: "follow.deleted",
}
Found = list[tuple[str, dict[str, Any]]]
Link = Callable[[str], Any]  # an artifact's key as events name it (`Look.link`)


def post_event(action: Action, model: str | None, image: Any = None) -> tuple[str, dict[str, Any]]:
    post = {"id": action.id, "username": action.username, "text": action.text, "tick": action.tick}
    post["reply_to"] = action.post if action.kind == ActionKind.REPLY else None
    post["quote_of"] = action.post if action.kind == ActionKind.QUOTE else None
    return "post.created", post | {"image": image, "model": model}


def picture_events(action: Action, picture: str | None, model: str | None, link: Link) -> Found:
    """A post's `post.created`, with its picture's link and the picture's `image.created` when it has one."""
    if picture is None:
        return [post_event(action, model)]
    image = link(picture)
    made = {"kind": "post", "username": action.username, "post": action.id, "image": image, "model": None}
    return [post_event(action, model, image), ("image.created", made)]


def action_event(action: Action) -> tuple[str, dict[str, Any]] | None:
    """The event of an action that makes no post (None: doing nothing makes none)."""
    if action.kind not in EVENT_OF:
        return None
    named = {"post": action.post} if action.kind in (ActionKind.LIKE, ActionKind.REPOST) else {"target": action.target}
    return EVENT_OF[action.kind], {"id": action.id, "username": action.username, "tick": action.tick, **named}


def spend_of(live: dict[str, Any] | None) -> dict[str, Any] | None:
    """The life's spend as its status said at the look: dollars, calls, and the tick it had reached."""
    if not live:
        return None
    usage, calls = live.get("usage") or {}, live.get("calls") or {}
    return {
        "cost_usd": usage.get("estimated_cost_usd"),
        "llm_calls": calls.get("llm_calls"),
        "as_of_tick": live.get("tick"),
    }


def _key(key: str) -> dict[str, str]:
    return {"key": key}


async def events_of_tick(
    store: ArtifactStore,
    life_id: str,
    tick: int,
    posts_before: int,
    live: dict[str, Any] | None,
    model: str | None,
    link: Link = _key,
) -> tuple[Found, int]:
    """Every event of a done tick, in order, and the life's posts after it."""
    if tick == 0:  # the world's own posts, as the life opened
        state = await state_at(store, life_id, 0)
        own = [
            Action(id=p.id, tick=0, username=p.username, kind=ActionKind.POST, text=p.text)
            for p in state.posts.values()
        ]
        return [post_event(a, None) for a in own], len(own)
    actions = await tick_actions(store, life_id, tick)
    pictured = await pictures_of_tick(store, life_id, tick) if any(a.picture for a in actions) else {}
    found: Found = []
    for action in actions:
        if action.kind in WRITES:
            found += picture_events(action, pictured.get(action.id), model, link)
        elif (event := action_event(action)) is not None:
            found.append(event)
    counts = dict.fromkeys((kind.value for kind in ActionKind), 0) | counts_of(actions)
    posts = posts_before + sum(1 for a in actions if a.kind in WRITES)
    found.append(("tick.completed", {"tick": tick, "actions": counts, "posts": posts, "spend": spend_of(live)}))
    return found, posts


async def look_at_life(store: ArtifactStore, look: Any, live: dict[str, Any] | None, model: str | None) -> bool:
    """What is new of the life into `look` (at most `PER_LOOK` events); True once every done tick is sent."""
    seen, room = look.seen, PER_LOOK
    while room > 0 and await tick_done(store, look.run_id, seen.life_tick + 1):
        tick = seen.life_tick + 1
        found, posts = await events_of_tick(store, look.run_id, tick, seen.life_posts, live, model, look.link)
        for event_type, data in found[seen.life_sent : seen.life_sent + room]:
            look.add(event_type, **data)
        sent = min(len(found), seen.life_sent + room)
        room -= sent - seen.life_sent
        if sent < len(found):
            seen.life_sent = sent
            return False
        seen.life_tick, seen.life_sent, seen.life_posts = tick, 0, posts
    return room > 0 or not await tick_done(store, look.run_id, seen.life_tick + 1)

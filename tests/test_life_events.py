"""A life's actions as events and signed webhooks (real dev server, workers, uvicorn and a receiver on loopback;
the offline provider): every post, like, repost, follow and unfollow of a small life arrives once, in order,
verified with `standardwebhooks`, and rebuilds the life's stored state; each reply names a post sent before it;
each tick ends with `tick.completed`, whose counts add up to the life's status. The look sends a few events at a
time here (`PER_LOOK`), so a tick goes out over several looks, as a 1,000-character tick does."""

from __future__ import annotations

import contextlib
from collections import Counter

import pytest

from activities import life_events
from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.life_layout import read_state
from kit.storage import LocalStore
from models.api import TERMINAL_EVENTS
from models.artifacts import ArtifactRef
from models.life import ActionKind, LifeStatus
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of, eventually
from tests.test_api_webhooks import SCHEDULE, Receiver, receiving
from workers.registry import QUEUES, build_workers

pytestmark = pytest.mark.slow  # a dev server, workers, uvicorn and a receiver

WORLD = {"prompt": "A harbour town of lamplighters", "characters": 6, "posts_per_character": 1}
TICKS = 5


@pytest.fixture(scope="module")
async def api(module_dev_env, tmp_path_factory):
    settings = api_settings(
        address_of(module_dev_env),
        tmp_path_factory.mktemp("life-hooks"),
        ATELIER_WEBHOOK_SCHEDULE_S=SCHEDULE,
        ATELIER_WEBHOOK_ALLOW_PRIVATE=True,
    )
    store = LocalStore(settings.artifact_dir)
    workers = build_workers(
        module_dev_env.client, list(QUEUES), GuardedProvider(OfflineProvider(), None), store, settings
    )
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        base, _ = await stack.enter_async_context(serving(settings, module_dev_env.client))
        yield base, store


def _ended(receiver: Receiver) -> bool | None:
    return any(p["type"] in TERMINAL_EVENTS for p in receiver.received.values()) or None


async def test_every_action_of_a_life_is_an_event_delivered_signed_once_in_order(api, monkeypatch):
    monkeypatch.setattr(life_events, "PER_LOOK", 7)
    base, store = api
    async with http(base) as client:
        made = (await client.post("/v1/worlds", json=WORLD | {"images": False, "scoring": False})).json()

        async def world_done():
            return (await client.get(f"/v1/runs/{made['id']}")).json()["status"] != "running" or None

        await eventually(world_done, 60, "the world made")
        receiver = Receiver(secret=(await client.get("/v1/webhooks/secret")).json()["secret"])
        async with receiving(receiver) as url:
            life = {"ticks": TICKS, "active_share": 1.0, "batch_size": 3, "webhook": url}
            started = await client.post(f"/v1/worlds/{made['id']}/life", json=life)
            assert started.status_code == 202, started.text
            await eventually(lambda: _ended(receiver), 60, "the life's last event delivered")
        result = (await client.get(f"/v1/runs/{started.json()['id']}/result")).json()
    status = LifeStatus.model_validate((result.get("result") or result)["status"])
    state = await read_state(store, ArtifactRef.model_validate(status.state_ref))

    payloads = sorted(receiver.received.values(), key=lambda p: p["data"]["seq"])
    assert [p["data"]["seq"] for p in payloads] == list(range(1, len(payloads) + 1)), "every event, in order"
    assert set(receiver.tries.values()) == {1}, "each delivered once"
    assert payloads[-1]["type"] == "run.completed"

    posts, likes, reposts, follows, ticks, tick = {}, set(), set(), {}, [], 0
    kinds: Counter = Counter()
    for payload in payloads:
        kind, data = payload["type"], payload["data"]
        if kind in ("post.created", "like.created", "repost.created", "follow.created", "follow.deleted"):
            assert data["tick"] == tick + 1 or (kind == "post.created" and data["tick"] == 0 == tick), data
        if kind == "post.created":
            assert data["id"] not in posts and data["text"] and data["username"]
            for other in (data["reply_to"], data["quote_of"]):
                assert other is None or other in posts, f"{data['id']} answers {other}, not sent before it"
            posts[data["id"]] = data
            kinds["reply" if data["reply_to"] else "quote" if data["quote_of"] else "post"] += data["tick"] > 0
        elif kind in ("like.created", "repost.created"):
            assert data["post"] in posts
            (likes if kind == "like.created" else reposts).add((data["username"], data["post"]))
            kinds[kind.split(".")[0]] += 1
        elif kind == "follow.created":
            follows.setdefault(data["username"], []).append(data["target"])
            kinds["follow"] += 1
        elif kind == "follow.deleted":
            follows[data["username"]].remove(data["target"])
            kinds["unfollow"] += 1
        elif kind == "tick.completed":
            tick = data["tick"]
            ticks.append(data)
            assert data["posts"] == len(posts), "a tick's posts are the life's posts so far"
            assert data["spend"]["llm_calls"] >= 1

    assert [t["tick"] for t in ticks] == list(range(1, TICKS + 1))
    assert set(posts) == set(state.posts), "every post of the life, the world's own included, is an event"
    assert {p: d["reply_to"] for p, d in posts.items()} == {p: s.reply_to for p, s in state.posts.items()}
    assert likes == {(who, post) for post, whom in state.likes.items() for who in whom}
    assert reposts == {(who, post) for post, whom in state.reposts.items() for who in whom}
    assert {u: f for u, f in follows.items() if f} == {u: f for u, f in state.follows.items() if f}
    summed = Counter()
    for t in ticks:
        summed.update(t["actions"])
    assert {k: n for k, n in summed.items() if n} == {str(k): n for k, n in status.actions.items() if n}
    assert {k: n for k, n in kinds.items() if n} == {k: n for k, n in summed.items() if n and k != ActionKind.NONE}
    assert kinds["reply"] and (kinds["follow"] or kinds["like"] or kinds["repost"]), kinds
    assert ticks[-1]["posts"] == status.posts == len(state.posts)

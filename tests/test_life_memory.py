"""A life's memory and talking to its characters: each character recalls its own posts, the replies it got and what
it read (ranked by shared words with no scoring worker, by MiniLM with one), reflects every few ticks, and later
decisions visibly read both; a conversation with a character, over the API, speaks as it and cites its own posts."""

from __future__ import annotations

import uuid

from temporalio.testing import ActivityEnvironment

from activities.life import life_key, read_world
from activities.life_memory import REFLECTIONS, LifeMemoryActivities
from activities.providers.offline import OfflineProvider
from kit.api_keys import KeyStore
from kit.storage import LocalStore, load, make_store
from models.conversation import PassageSearches, Ranked, RankPassagesRequest
from models.life import Feed, FeedItem, Feeds, LifeJob, LifeResult, LifeState, Post, life_id
from models.life_memory import GatherRequest
from models.settings import SCORING_QUEUE
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of, eventually, running_workers
from tests.test_life import make_world, start_life
from workers.registry import QUEUES


async def test_characters_recall_their_past_reflect_and_later_decisions_read_both(module_dev_env, tmp_path):
    store, world = LocalStore(tmp_path), f"world-{uuid.uuid4().hex[:8]}"
    await make_world(store, world, characters=8)
    job = LifeJob(world_id=world, ticks=6, active_share=1.0, batch_size=4, reflect_every=2, feed_size=3)
    no_scoring = [q for q in QUEUES if q != SCORING_QUEUE]  # memory degrades to shared words
    async with running_workers(module_dev_env.client, OfflineProvider(), store, queues=no_scoring):
        handle = await start_life(module_dev_env, job)
        result: LifeResult = await handle.result()
    st = result.status
    assert st.tick == 6 and st.reflections == 8 * 3 and st.calls.llm_calls == 6 * 2 + 3 * 2  # reflections are paid
    scheduled = {
        e.activity_task_scheduled_event_attributes.activity_type.name
        async for e in handle.fetch_history_events()
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    assert {"gather_memories", "rank_passages_lexically", "reflect"} <= scheduled and "rank_passages" not in scheduled

    state = LifeState.model_validate_json(await load(store, st.state_ref))
    reflections = {}  # (username, tick) → text
    for key in await store.keys(life_key(handle.id, "reflections") + "/"):
        for r in REFLECTIONS.validate_json(await store.read(key)):
            reflections[(r.username, r.tick)] = r.text
    assert {t for _, t in reflections} == {2, 4, 6} and len(reflections) == 24
    for (username, _), text in reflections.items():  # each looks back on its own past: a post of its or to it
        mine = {p.id for p in state.posts.values() if p.username == username}
        assert any(
            p.text[:25] in text and (p.username == username or {p.reply_to, p.quote_of} & mine)
            for p in state.posts.values()
        ), text

    writes = [p for p in state.posts.values() if p.tick > 0]
    for post in writes:  # what a character writes after its reflection echoes that reflection
        latest = max((t for u, t in reflections if u == post.username and t < post.tick), default=None)
        if latest is None:
            assert "As I reflected" not in post.text
        else:
            assert reflections[(post.username, latest)][:30] in post.text, post.text
    assert sum("As I reflected" in p.text for p in writes) >= 20

    recalled_any = 0
    for post in writes:  # a post that remembers quotes the memory it recalled best that tick
        if "I remember" not in post.text:
            continue
        recalled = await store.read(life_key(handle.id, "memory", f"{post.tick:04d}-recalled.json"))
        best = Ranked.model_validate_json(recalled).found[post.username][0]
        assert " ".join(best.text.split())[:40] in post.text
        recalled_any += 1
    assert recalled_any, "no post recalled a memory"


async def test_a_characters_memory_is_its_posts_the_replies_it_got_and_what_it_read(tmp_path):
    store = LocalStore(tmp_path)
    world = f"world-{uuid.uuid4().hex[:8]}"
    await make_world(store, world, characters=4)
    life = life_id(world)
    posts = {
        "0:c00:1": Post(id="0:c00:1", username="c00", text="The tide charts are wrong again", tick=0),
        "1:c01": Post(id="1:c01", username="c01", text="@c00 the tide charts were fixed", tick=1, reply_to="0:c00:1"),
        "1:c02": Post(id="1:c02", username="c02", text="Lanterns need oil by dusk", tick=1),
        "1:c03": Post(id="1:c03", username="c03", text="Chess in the square, nobody read this", tick=1),
    }
    state = LifeState(life_id=life, world_id=world, tick=1, posts=posts)
    read = Feeds(tick=1, feeds={"c00": Feed(username="c00", items=[FeedItem(**posts["1:c02"].model_dump(), score=1)])})
    now = Feeds(tick=2, feeds={"c00": Feed(username="c00", items=[FeedItem(**posts["1:c01"].model_dump(), score=1)])})
    cast, _ = await read_world(store, world)
    put = {}
    for name, model, key in (
        ("state", state, life_key(life, "state", "0001.json")),
        ("read", read, life_key(life, "feeds", "0001.json")),
        ("now", now, life_key(life, "feeds", "0002.json")),
        ("cast", cast, life_key(life, "cast.json")),
    ):
        put[name] = await store.put(key, model.model_dump_json().encode(), "application/json")
    memory = LifeMemoryActivities(None, store)  # type: ignore[arg-type]  (storage steps call no model)
    env = ActivityEnvironment()
    request = GatherRequest(
        life_id=life, tick=2, cast=put["cast"], state=put["state"], feeds=put["now"], active=["c00", "c03"]
    )
    gathered = await env.run(memory.gather_memories, request)
    searches = PassageSearches.model_validate_json(await load(store, gathered.searches)).searches
    assert {p.ref for p in searches["c00"].passages} == {"0:c00:1", "1:c01", "1:c02"}  # not c03's, unread
    assert {p.ref for p in searches["c03"].passages} == {"1:c03"}
    assert "the tide charts were fixed" in searches["c00"].query  # what it reads now
    ranked_ref = await env.run(
        memory.rank_passages_lexically, RankPassagesRequest(searches=gathered.searches, k=2, key=gathered.ranked_key)
    )
    found = Ranked.model_validate_json(await load(store, ranked_ref)).found
    assert [p.ref for p in found["c00"]][:2] == ["1:c01", "0:c00:1"] and found["c00"][0].score > 0


async def test_a_conversation_with_a_character_speaks_as_it_and_cites_its_own_posts(module_dev_env, tmp_path):
    settings = api_settings(address_of(module_dev_env), tmp_path)
    keys = KeyStore(settings.api_keys_path)
    acme, zeta = keys.add("acme")[0], keys.add("zeta")[0]
    store = make_store(settings)
    async with (
        serving(settings, module_dev_env.client) as (base, _),
        http(base, acme) as api,
        http(base, zeta) as other,
        running_workers(module_dev_env.client, OfflineProvider(), store, settings=settings),
    ):
        world = {"prompt": "A harbour town of lamplighters", "characters": 3, "posts_per_character": 1}
        made = await api.post("/v1/worlds", json=world | {"images": False, "scoring": False})
        world_id = made.json()["id"]

        async def finished(run_id: str):
            run = (await api.get(f"/v1/runs/{run_id}")).json()
            return run if run["status"] != "running" else None

        await eventually(lambda: finished(world_id), 60, "the world")
        lived = await api.post(f"/v1/worlds/{world_id}/life", json={"ticks": 2, "active_share": 1.0})
        await eventually(lambda: finished(lived.json()["id"]), 60, "the life")
        result = (await api.get(f"/v1/runs/{lived.json()['id']}/result")).json()
        status = (result.get("result") or result)["status"]
        state = LifeState.model_validate_json(await store.read(status["state_ref"]["key"]))
        post = next(p for p in state.posts.values() if p.tick > 0)  # a post of its life
        username = post.username

        talk = f"/v1/worlds/{world_id}/characters/{username}/conversations"
        assert (await other.post(talk)).status_code == 404  # another tenant's world
        assert (await api.post(f"/v1/worlds/{world_id}/characters/nobody/conversations")).status_code == 404
        assert (await api.post("/v1/worlds/acme.world-none/characters/x/conversations")).status_code == 404
        bad = await api.post(talk, json={"config": {"top_k": 0}})
        assert bad.status_code == 422 and "body.config.top_k" in bad.text
        started = await api.post(talk, json={"config": {"speaker": {"world_id": "zeta.world-x", "username": "x"}}})
        assert started.status_code == 201, started.text
        reply = await api.post(started.json()["messages"], json={"text": f"What did you say about {post.text}?"})
        assert reply.status_code == 200, reply.text
        answer = reply.json()
    assert answer["text"].startswith(f"@{username} here.") and "From what I remember" in answer["text"]
    cited = [c for c in answer["citations"] if c["source"] == "memory" and c["ref"] in state.posts]
    assert post.id in {c["ref"] for c in cited}  # its own post, found in its memory
    assert all(state.posts[c["ref"]].username == username for c in cited if c["title"].startswith("I wrote"))

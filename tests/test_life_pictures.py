"""A life's feeds ranked by meaning (MiniLM on the scoring queue, shared words without it) and its posts' pictures
(made on the image queue, stored with key and sha256, in `post.created` events, counted against the image calls)."""

from __future__ import annotations

import hashlib
import uuid

from activities.life_events import events_of_tick
from activities.life_feeds import rank
from activities.providers.offline import OfflineProvider
from kit.life_layout import life_key, state_at
from kit.storage import LocalStore, load
from kit.world_layout import character_key, post_key
from models.life import Cast, CastMember, Feeds, LifeJob, LifeResult, LifeRunState, LifeState, Post
from models.settings import SCORING_QUEUE
from models.world import Budget, CharacterDetail, PostDetail
from tests.conftest import running_workers
from tests.test_life import EVENT, make_world, start_life
from workers.registry import QUEUES

# the reader's interest shares no word with the post it should read first (stars, telescope: astronomy)
CAST = {
    "reader": (["astronomy"], "Nothing to report from the reading room."),
    "baker": (["sourdough"], "The sourdough rose twice this morning, crust crackling."),
    "knitter": (["knitting"], "Casting on a new scarf in wool, purl and knit."),
    "zz_sky": (["stargazing"], "Saturn's rings and four moons of Jupiter through my telescope tonight."),
}


async def sky_world(store: LocalStore, world_id: str) -> None:
    for username, (interests, text) in CAST.items():
        profile = CharacterDetail(
            username=username,
            display_name=username,
            bio="-",
            appearance="-",
            personality="-",
            avatar_description="-",
            interests=interests,
            speaking_style="plain",
        )
        post = PostDetail(content=text, image_prompt="-", mood="calm", context="-")
        await store.put(character_key(world_id, username, "profile.json"), profile.model_dump_json().encode(), "json")
        await store.put(post_key(world_id, username, 1, "json"), post.model_dump_json().encode(), "json")


async def first_feed_of_reader(env, store: LocalStore, queues: list[str]) -> list[str]:
    world = f"world-{uuid.uuid4().hex[:8]}"
    await sky_world(store, world)
    job = LifeJob(world_id=world, ticks=1, active_share=1, reflect_every=0)
    async with running_workers(env.client, OfflineProvider(), store, queues=queues):
        handle = await start_life(env, job)
        result: LifeResult = await handle.result()
    assert result.state == LifeRunState.COMPLETED
    feeds = Feeds.model_validate_json(await store.read(life_key(handle.id, "feeds", "0001.json")))
    return [item.username for item in feeds.feeds["reader"].items]


async def test_feeds_rank_by_meaning_with_a_scoring_worker_and_by_words_without(dev_env, tmp_path):
    """A server of its own, without a scoring worker first: the server remembers a poller for a while after it
    stopped, so a life started after one would send its feeds to the scoring queue and wait for it."""
    store = LocalStore(tmp_path)
    by_words = await first_feed_of_reader(dev_env, store, [q for q in QUEUES if q != SCORING_QUEUE])
    assert set(by_words) == {"baker", "knitter", "zz_sky"} and by_words[0] != "zz_sky"
    by_meaning = await first_feed_of_reader(dev_env, store, list(QUEUES))
    assert by_meaning[0] == "zz_sky"  # no shared word, the same meaning
    # the same order the pure-Python ranker gives (ties by id): the fallback is the word ranker
    cast = Cast(
        world_id="w", members=[CastMember(username=u, display_name=u, interests=i) for u, (i, _) in CAST.items()]
    )
    posts = {f"0:{u}:1": Post(id=f"0:{u}:1", username=u, text=text, tick=0) for u, (_, text) in CAST.items()}
    lexical = rank(cast, LifeState(life_id="l", world_id="w", posts=posts), 1, ["reader"], [], 8)["reader"]
    assert [i.username for i in lexical.items] == by_words


async def test_posts_get_pictures_stored_sent_and_counted_and_none_past_the_image_budget(module_dev_env, tmp_path):
    store = LocalStore(tmp_path)
    world = f"world-{uuid.uuid4().hex[:8]}"
    await make_world(store, world, characters=10)
    no_scoring = [q for q in QUEUES if q != SCORING_QUEUE]
    job = LifeJob(world_id=world, ticks=2, active_share=0.5, batch_size=5, reflect_every=0)
    async with running_workers(module_dev_env.client, OfflineProvider(), store, queues=no_scoring):
        handle = await start_life(module_dev_env, job, start_signal="inject_event", start_signal_args=[EVENT])
        result: LifeResult = await handle.result()
        assert result.state == LifeRunState.COMPLETED
        state = await state_at(store, handle.id, 2)
        pictured = [p for p in state.posts.values() if p.picture is not None]
        assert pictured and all(p.tick >= 1 and not p.reply_to and not p.quote_of for p in pictured)
        for post in pictured:  # claim check: the stored bytes are the ones the post names
            assert post.picture is not None and post.picture.key.startswith(life_key(handle.id, "pictures") + "/")
            assert hashlib.sha256(await load(store, post.picture)).hexdigest() == post.picture.sha256
        assert result.status.calls.image_calls == result.status.pictures == len(pictured)
        found, _ = await events_of_tick(store, handle.id, 1, 0, None, None)
        made = {e["post"]: e["image"] for kind, e in found if kind == "image.created"}
        posted = {e["id"]: e["image"] for kind, e in found if kind == "post.created"}
        tick_one = {p.id: p.picture.key for p in pictured if p.tick == 1 and p.picture is not None}
        assert tick_one and made == {pid: {"key": key} for pid, key in tick_one.items()}
        assert all(posted[pid] == {"key": key} for pid, key in tick_one.items())

        none_left = LifeJob(world_id=f"{world}b", ticks=2, active_share=0.5, batch_size=5, budget=Budget(image_calls=0))
        await make_world(store, none_left.world_id, characters=10)
        handle = await start_life(module_dev_env, none_left, start_signal="inject_event", start_signal_args=[EVENT])
        result = await handle.result()
    assert result.state == LifeRunState.COMPLETED and result.status.tick == 2
    state = await state_at(store, handle.id, 2)
    assert not any(p.picture for p in state.posts.values()) and result.status.calls.image_calls == 0
    assert result.status.actions["post"] > 0

"""A world's life (`workflows.life`) on the real dev server with the offline provider: its structure (threads from
what each character read, follows by shared interests, events in the next tick's posts), pause/resume/stop, the
budget that pauses it, and an apply step that, retried, doubles nothing."""

from __future__ import annotations

import uuid

from temporalio.client import WorkflowHandle
from temporalio.testing import ActivityEnvironment

from activities.life import LifeActivities, life_key
from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore, load
from kit.world_layout import character_key, post_key
from models.life import (
    Action,
    ActionKind,
    ApplyRequest,
    Feeds,
    LifeJob,
    LifeResult,
    LifeRunState,
    LifeState,
    LifeStatus,
    OpenLifeRequest,
    Post,
    life_id,
)
from models.settings import WORKFLOW_QUEUE
from models.world import Budget, CharacterDetail, PostDetail
from tests.conftest import eventually, running_workers
from workflows.life import LifeWorkflow

INTERESTS = ["tides", "lanterns", "maps", "bread", "chess", "stars", "knots", "kites"]
EVENT = "a storm closes the harbour"


async def make_world(store: LocalStore, world_id: str, characters: int = 20) -> dict[str, set[str]]:
    """A world's stored layout as the world pipeline leaves it: profiles and one post each."""
    interests = {}
    for i in range(characters):
        username = f"c{i:02d}"
        mine = [INTERESTS[i % 8], INTERESTS[(3 * i + 1) % 8]]
        interests[username] = set(mine)
        profile = CharacterDetail(
            username=username,
            display_name=f"Character {i}",
            bio=f"keeper of {mine[0]}",
            appearance="tall",
            personality="curious",
            avatar_description="a face",
            interests=mine,
            speaking_style="plain",
        )
        post = PostDetail(
            content=f"Morning notes on {mine[0]} from @{username}.", image_prompt="-", mood="calm", context="-"
        )
        await store.put(character_key(world_id, username, "profile.json"), profile.model_dump_json().encode(), "json")
        await store.put(post_key(world_id, username, 1, "json"), post.model_dump_json().encode(), "json")
    return interests


async def start_life(env, job: LifeJob, **options) -> WorkflowHandle:
    return await env.client.start_workflow(
        LifeWorkflow.run, job, id=life_id(job.world_id), task_queue=WORKFLOW_QUEUE, **options
    )


async def status_of(handle: WorkflowHandle) -> LifeStatus:
    return await handle.query(LifeWorkflow.status)


async def test_a_life_of_20_characters_for_6_ticks_has_the_structure_of_what_they_read(module_dev_env, tmp_path):
    store, world = LocalStore(tmp_path), f"world-{uuid.uuid4().hex[:8]}"
    interests = await make_world(store, world)
    job = LifeJob(world_id=world, ticks=6, active_share=0.5, batch_size=5)
    async with running_workers(module_dev_env.client, OfflineProvider(), store):
        handle = await start_life(module_dev_env, job, start_signal="inject_event", start_signal_args=[EVENT])
        result: LifeResult = await handle.result()
    st = result.status
    assert result.state == LifeRunState.COMPLETED and st.tick == 6
    assert st.calls.llm_calls == 6 * 2 + 2 and st.reflections == 10  # and the 2 batches reflecting at tick 4
    assert sum(st.actions.values()) == 6 * 10  # one action per active character per tick
    state = LifeState.model_validate_json(await load(store, st.state_ref))
    assert state.tick == 6 and len(state.applied) == len(set(state.applied)) == 60

    lived = [p for p in state.posts.values() if p.tick > 0]
    threaded = [p for p in lived if p.reply_to or p.quote_of]
    assert len(lived) >= 20 and len(threaded) >= 0.3 * len(lived)
    feeds = {
        t: Feeds.model_validate_json(await store.read(life_key(handle.id, "feeds", f"{t:04d}.json")))
        for t in range(1, 7)
    }
    for post in threaded:
        answered = state.posts[post.reply_to or post.quote_of]  # it exists
        read = {item.id for item in feeds[post.tick].feeds[post.username].items}
        assert answered.id in read, f"{post.id} answers {answered.id}, which it did not read"
        assert f"@{answered.username}" in post.text  # a reply names the post it answers
    follows = [(who, whom) for who, followed in state.follows.items() for whom in followed]
    assert follows and all(interests[who] & interests[whom] for who, whom in follows)

    first = [p for p in lived if p.tick == 1]
    assert first and all(EVENT in p.text for p in first)  # the event entered every feed of the next tick
    assert not any(EVENT in p.text for p in state.posts.values() if p.tick == 0)
    assert [e.text for e in state.events] == [EVENT] and all(EVENT in f.events[0].text for f in feeds[1].feeds.values())
    assert not any(f.events for f in feeds[2].feeds.values())


async def test_pause_resume_and_stop_each_idempotent_and_an_event_enters_the_next_tick(module_dev_env, tmp_path):
    store, world = LocalStore(tmp_path), f"world-{uuid.uuid4().hex[:8]}"
    await make_world(store, world, characters=6)
    job = LifeJob(world_id=world, ticks=50, active_share=1.0, batch_size=3)
    async with running_workers(module_dev_env.client, OfflineProvider(), store):
        handle = await start_life(module_dev_env, job, start_signal="pause")
        await handle.signal(LifeWorkflow.pause)  # twice: as once
        paused = await eventually(lambda: _in(handle, LifeRunState.PAUSED), 20, "the life paused before its first tick")
        assert paused.tick == 0
        await handle.signal(LifeWorkflow.inject_event, EVENT)
        await handle.signal(LifeWorkflow.resume)
        await handle.signal(LifeWorkflow.resume)
        await eventually(lambda: _at_least(handle, 2), 30, "the life ticked on after resume")
        await handle.signal(LifeWorkflow.pause)
        held = await eventually(lambda: _in(handle, LifeRunState.PAUSED), 20, "the life paused again")
        await handle.signal(LifeWorkflow.stop)
        await handle.signal(LifeWorkflow.stop)
        result: LifeResult = await handle.result()
    assert result.state == LifeRunState.STOPPED and result.status.tick == held.tick < 50  # no tick while paused
    state = LifeState.model_validate_json(await load(store, result.status.state_ref))
    first = [p for p in state.posts.values() if p.tick == 1]
    assert len(first) == 6 and all(EVENT in p.text for p in first)
    assert state.events[0].tick == 1


async def _in(handle: WorkflowHandle, state: LifeRunState) -> LifeStatus | None:
    st = await status_of(handle)
    return st if st is not None and st.state == state else None


async def _at_least(handle: WorkflowHandle, tick: int) -> LifeStatus | None:
    st = await status_of(handle)
    return st if st is not None and st.tick >= tick else None


async def test_the_budget_pauses_the_life_within_one_tick_and_says_so(module_dev_env, tmp_path):
    store, world = LocalStore(tmp_path), f"world-{uuid.uuid4().hex[:8]}"
    await make_world(store, world)
    job = LifeJob(world_id=world, ticks=6, active_share=0.5, batch_size=5, budget=Budget(llm_calls=3))
    async with running_workers(module_dev_env.client, OfflineProvider(), store):
        handle = await start_life(module_dev_env, job)
        st = await eventually(lambda: _in(handle, LifeRunState.BUDGET_EXHAUSTED), 30, "the budget paused the life")
        assert st.budget_exhausted and st.tick == 2 and st.calls.llm_calls == 3 and "budget exhausted" in st.note
        assert st.skipped == 5 and sum(st.actions.values()) == 10 + 5  # tick 2: only the batch the budget paid for
        await handle.signal(LifeWorkflow.resume)  # nothing left: it pauses again at once, before another tick
        await handle.signal(LifeWorkflow.stop)
        result: LifeResult = await handle.result()
    assert result.state == LifeRunState.STOPPED and result.status.tick == 2 and result.status.calls.llm_calls == 3


async def test_an_apply_step_retried_doubles_nothing(tmp_path):
    store, world = LocalStore(tmp_path), f"world-{uuid.uuid4().hex[:8]}"
    await make_world(store, world, characters=4)
    life = LifeActivities(None, store)  # type: ignore[arg-type]  (storage steps call no model)
    env = ActivityEnvironment()
    opened = await env.run(life.open_life, OpenLifeRequest(life_id="life-x", world_id=world))
    post = Post(id="1:c00", username="c00", text="@c01 re the maps", tick=1, reply_to="0:c01:1")
    actions = [
        Action(id="1:c00", tick=1, username="c00", kind=ActionKind.REPLY, text=post.text, post="0:c01:1"),
        Action(id="1:c01", tick=1, username="c01", kind=ActionKind.LIKE, post="0:c02:1"),
        Action(id="1:c02", tick=1, username="c02", kind=ActionKind.FOLLOW, target="c03"),
    ]
    batch = await store.put(
        life_key("life-x", "actions", "0001-000.json"),
        b"[" + b",".join(a.model_dump_json().encode() for a in actions) + b"]",
        "application/json",
    )
    request = ApplyRequest(life_id="life-x", tick=1, state=opened.state, batches=[batch, batch])  # the batch twice
    first = await env.run(life.apply_actions, request)
    again = await env.run(life.apply_actions, request)  # the step retried from its input
    assert first.counts == {"reply": 1, "like": 1, "follow": 1} and first.already == 3
    assert again.state.sha256 == first.state.sha256  # the same state, stored again under its key
    onto = await env.run(life.apply_actions, request.model_copy(update={"state": first.state}))  # applied on itself
    assert onto.counts == {} and onto.already == 6
    state = LifeState.model_validate_json(await load(store, onto.state))
    assert state.posts["1:c00"].reply_to == "0:c01:1" and state.replies == {"0:c01:1": 1}
    assert state.likes == {"0:c02:1": ["c01"]} and state.follows == {"c02": ["c03"]}
    assert len(state.applied) == 3 and len(state.posts) == 4 + 1

"""A world's life on a real OpenAI-compatible server (`tests.fake_openai`), its worker a process SIGKILLed three
times mid-tick and restarted: the life ends with every character's action of every tick applied exactly once, and
no paid call asked twice except those the kill cut off in flight.

What "a paid call repeated" means here: the test server asks of every decision and reflection call its tick and
its batch (the characters the prompt lists). Each kill lands while the server holds a tick's calls unanswered, and
only once every call it did answer was recorded by Temporal as a completed activity: so every answer the worker
got, the server recorded as done, and every call cut off never had its answer reach the worker. Those cut off are
asked once more (by the retried activity), and nothing else is ever asked twice."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass

import pytest
from temporalio.client import Client

from kit.life_layout import tick_actions
from kit.storage import LocalStore, load
from models.life import Feeds, LifeJob, LifeResult, LifeRunState, LifeState
from models.settings import EVENTS_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE, Settings
from tests.conftest import address_of, atelier_env, eventually, start_worker, wait_for_pollers
from tests.fake_openai import FakeOpenAI, Recorded
from tests.test_life import make_world, start_life

pytestmark = pytest.mark.slow

QUEUES = (WORKFLOW_QUEUE, TEXT_QUEUE, STORAGE_QUEUE, EVENTS_QUEUE)  # no scoring: memories ranked by their words
PAID = ("decide_actions", "reflect")  # the life's paid activities
TICK = re.compile(r"Tick (\d+) of its life")
CHARACTER = re.compile(r"^@(\S+) \(", re.M)


@dataclass(frozen=True)
class Kill:
    """Where a kill lands: while the server holds every `schema` call of `tick` (`batches` of them)."""

    schema: str
    tick: int
    batches: int


def call_key(record: Recorded) -> tuple[str, int, tuple[str, ...]]:
    """What a paid call of the life asks: its schema, its tick and its batch (the characters it lists)."""
    body = record.body
    prompt = str(body["messages"][-1]["content"])
    tick = TICK.search(prompt)
    assert tick is not None, prompt[:200]
    return body["response_format"]["json_schema"]["name"], int(tick[1]), tuple(CHARACTER.findall(prompt))


async def completed_paid(client: Client, workflow_id: str) -> int:
    """The life's paid activities Temporal recorded as completed (every run of it)."""
    scheduled: dict[int, str] = {}
    paid = 0
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.HasField("activity_task_completed_event_attributes"):
            paid += scheduled[event.activity_task_completed_event_attributes.scheduled_event_id] in PAID
    return paid


async def test_three_worker_kills_mid_tick_lose_no_action_double_none_and_repeat_no_paid_call(dev_env, tmp_path):
    fake = FakeOpenAI()
    fake.start()
    env = atelier_env(tmp_path, address_of(dev_env), LLM_BASE_URL=fake.url, LLM_API_KEY="sk-life-chaos")
    store = LocalStore(Settings(ATELIER_DATA_DIR=str(tmp_path / "data")).artifact_dir)
    await make_world(store, "world-chaos", characters=12)
    # 6 active characters a tick, 3 decision calls; at ticks 2, 4 and 6, 3 reflection calls
    job = LifeJob(world_id="world-chaos", ticks=6, active_share=0.5, batch_size=2, reflect_every=2)
    kills = [Kill("Decisions", 2, 3), Kill("Reflections", 4, 3), Kill("Decisions", 5, 3)]
    killed_at: list[float] = []
    workers = [start_worker(env, tmp_path / "worker-0.log", QUEUES)]
    try:
        await wait_for_pollers(dev_env.client, WORKFLOW_QUEUE)
        fake.hold(f'"{kills[0].schema}"', f"Tick {kills[0].tick} of its life")
        handle = await start_life(dev_env, job)
        for number, kill in enumerate(kills, 1):
            if number > 1:
                fake.hold(f'"{kill.schema}"', f"Tick {kill.tick} of its life")
            await eventually(lambda k=kill: len(held(fake, k)) == k.batches, 30, f"{kill} held")

            async def all_answers_recorded() -> bool:
                answered = sum(1 for r in fake.calls("chat") if reached_a_worker(r, killed_at))
                return await completed_paid(dev_env.client, handle.id) == answered

            await eventually(all_answers_recorded, 30, "every answered call recorded as done", every=0.2)
            killed_at.append(time.monotonic())
            kill_worker(workers[-1])
            fake.release()  # the held calls are answered into a closed socket: no worker ever reads them
            workers.append(start_worker(env, tmp_path / f"worker-{number}.log", QUEUES))
        result: LifeResult = await asyncio.wait_for(handle.result(), timeout=60)
    finally:
        fake.release()
        fake.stop()

    assert result.state == LifeRunState.COMPLETED and result.status.tick == 6
    await check_actions(store, result, job)
    check_paid_calls(fake.calls("chat"), kills, killed_at)


def reached_a_worker(record: Recorded, killed_at: list[float]) -> bool:
    """Whether the call's answer was written to a live worker: not cut off by a kill while it was held (an
    answer written after the kill went into a closed socket)."""
    return record.answered is not None and not any(record.at < kill < record.answered for kill in killed_at)


def held(fake: FakeOpenAI, kill: Kill) -> list[Recorded]:
    return [r for r in fake.calls("chat") if call_key(r)[:2] == (kill.schema, kill.tick) and r.answered is None]


def kill_worker(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)


async def check_actions(store: LocalStore, result: LifeResult, job: LifeJob) -> None:
    """0 lost, 0 doubled: every action id of every tick once in the stored state, one per active character."""
    st = result.status
    assert st.state_ref is not None
    state = LifeState.model_validate_json(await load(store, st.state_ref))
    assert len(state.applied) == len(set(state.applied)) == sum(st.actions.values()) == 6 * 6
    for tick in range(1, job.ticks + 1):
        feeds = Feeds.model_validate_json(await store.read(f"lives/{st.life_id}/feeds/{tick:04d}.json"))
        active = set(feeds.feeds)
        assert len(active) == 6
        assert {a for a in state.applied if a.startswith(f"{tick}:")} == {f"{tick}:{u}" for u in active}
        actions = await tick_actions(store, st.life_id, tick)
        assert sorted(a.username for a in actions) == sorted(active), f"tick {tick}: one action each"
        for action in actions:  # the fake replies to the first post of each feed: a post made once, by its id
            assert action.kind == "reply" and action.post == feeds.feeds[action.username].items[0].id
            assert state.posts[action.id].reply_to == action.post
    lived = [p for p in state.posts.values() if p.tick > 0]
    assert len(lived) == len({p.id for p in lived}) == st.actions["reply"] == 36


def check_paid_calls(calls: list[Recorded], kills: list[Kill], killed_at: list[float]) -> None:
    """Each (schema, tick, batch) asked once; those held at a kill asked exactly twice: once cut off (no answer
    written before the kill) and once after it, answered."""
    asked: dict[tuple, list[Recorded]] = defaultdict(list)
    for record in calls:
        asked[call_key(record)].append(record)
    assert len(asked) == 6 * 3 + 3 * 3, sorted(asked)  # 18 decision calls, 9 reflection calls
    cut = {key for key in asked for kill in kills if key[:2] == (kill.schema, kill.tick)}
    assert len(cut) == 3 * len(kills)
    for key, records in asked.items():
        if key not in cut:
            assert len(records) == 1, f"{key} asked {len(records)} times"
            continue
        first, again = records
        at = killed_at[next(i for i, k in enumerate(kills) if key[:2] == (k.schema, k.tick))]
        assert first.at < at and not reached_a_worker(first, killed_at), f"{key}: answered before the kill"
        assert again.at > at and again.answered is not None

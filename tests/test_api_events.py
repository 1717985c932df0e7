"""A run's events over SSE: typed, numbered, resumable with Last-Event-ID, ending with the terminal event;
a world's events name each character and post as it is made."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from activities.run_events import RunObserver
from kit.storage import LocalStore
from kit.world_layout import character_key, post_key
from models.events import ObserveRequest, Seen
from models.settings import Settings
from models.workflow_interfaces import WorldWorkflow
from models.world import CharacterDetail, PostDetail
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of, running_workers

pytestmark = pytest.mark.slow  # a dev server, workers and uvicorn


@pytest.fixture(scope="module")
async def api(module_dev_env, tmp_path_factory) -> AsyncIterator[tuple[str, Settings]]:
    settings = api_settings(address_of(module_dev_env), tmp_path_factory.mktemp("events"))
    provider = GuardedProvider(OfflineProvider(latency_s=0.15), None)  # a world takes a few seconds
    async with (
        running_workers(module_dev_env.client, provider, LocalStore(settings.artifact_dir)),
        serving(settings, module_dev_env.client) as served,
    ):
        yield served


async def read_events(
    client: httpx.AsyncClient, run_id: str, last: int | None = None, stop_after: int | None = None
) -> list[dict]:
    """The stream's events (as their data), until it ends or `stop_after` of them were read."""
    headers = {"Last-Event-ID": str(last)} if last is not None else {}
    events: list[dict] = []
    async with client.stream("GET", f"/v1/runs/{run_id}/events", headers=headers, timeout=120) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        async for line in stream.aiter_lines():
            if line.startswith(("id:", "event:", "data:")):
                name, _, value = line.partition(":")
                fields[name] = value.strip()
            elif line == "" and fields:
                event = json.loads(fields["data"])
                assert int(fields["id"]) == event["seq"] and fields["event"] == event["type"]
                events.append(event)
                fields = {}
                if stop_after is not None and len(events) >= stop_after:
                    break
    return events


async def test_a_world_streams_each_character_and_post_once_and_resumes_where_it_left_off(api):
    base, _ = api
    async with http(base) as client:
        job = {"prompt": "A glass-blowers' island", "characters": 3, "posts_per_character": 2, "images": True}
        run_id = (await client.post("/v1/worlds", json=job)).json()["id"]
        first = await read_events(client, run_id, stop_after=4)  # a client that drops mid-run…
        rest = await read_events(client, run_id, last=first[-1]["seq"])  # …and reconnects
        whole = await read_events(client, run_id)  # a late subscriber reads everything recorded
        ended = await client.get(f"/v1/runs/{run_id}/events", headers={"Last-Event-ID": str(rest[-1]["seq"])})
        assert ended.status_code == 204, "a client resuming after the terminal event is told the stream has ended"
    events = first + rest
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "nothing lost, nothing twice"
    assert events == whole
    types = [e["type"] for e in events]
    assert types[0] == "run.started" and types[-1] == "run.completed" and types.count("run.completed") == 1
    characters = [e["data"]["username"] for e in events if e["type"] == "character.created"]
    posts = [(e["data"]["username"], e["data"]["number"]) for e in events if e["type"] == "post.created"]
    assert len(characters) == len(set(characters)) == 3
    assert len(posts) == len(set(posts)) == 6 and {u for u, _ in posts} == set(characters)
    for post in (e["data"] for e in events if e["type"] == "post.created"):
        assert post["content"] and isinstance(post["hashtags"], list)
        assert post["image"] is None or post["image"]["url"].startswith(f"{base}/v1/artifacts/worlds/")
    pictured = [e["data"] for e in events if e["type"] == "post.created" and e["data"]["image"]]
    assert pictured, "the posts the plan gave a picture carry its link"
    async with http(base) as client:
        picture = await client.get(pictured[0]["image"]["url"])
        assert picture.status_code == 200 and picture.headers["content-type"].startswith("image/")
    for username in characters:  # a character comes before its posts
        created = next(i for i, e in enumerate(events) if e["data"].get("username") == username)
        assert events[created]["type"] in ("character.created", "image.created")


async def test_an_image_run_streams_its_iterations(api):
    base, _ = api
    async with http(base) as client:
        run_id = (
            await client.post("/v1/images", json={"prompt": "a kite", "max_iterations": 2, "threshold": 100})
        ).json()["id"]
        events = await read_events(client, run_id)
    iterations = [e["data"]["number"] for e in events if e["type"] == "iteration.completed"]
    pictures = [e["data"]["image"]["key"] for e in events if e["type"] == "image.created"]
    assert iterations == [1, 2] and len(pictures) == 2 and events[-1]["type"] == "run.completed"
    assert events[-1]["data"]["state"] == "max_iterations"


async def test_a_cancelled_run_ends_its_stream_with_run_cancelled(api):
    base, _ = api
    async with http(base) as client:
        job = {"prompt": "A long valley", "characters": 6, "posts_per_character": 4, "images": False}
        run_id = (await client.post("/v1/worlds", json=job)).json()["id"]
        started = await read_events(client, run_id, stop_after=1)
        await client.post(f"/v1/runs/{run_id}/cancel")
        events = started + await read_events(client, run_id, last=started[-1]["seq"])
    assert events[-1]["type"] == "run.cancelled"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


async def test_a_world_file_that_does_not_parse_is_skipped_with_a_warning(module_dev_env, tmp_path, caplog):
    """The feed reads a world's files as they are stored: a profile or a post that is not its model is left
    out (logged), and the feed goes on with the rest instead of failing its look for ever."""
    client, store = module_dev_env.client, LocalStore(tmp_path)
    world_id = "bad-files.world-1"
    handle = await client.start_workflow(WorldWorkflow.run, {}, id=world_id, task_queue="nobody-polls-this")
    await handle.terminate("only its stored files matter here")
    ada = CharacterDetail(
        username="ada", display_name="Ada", bio="Keeps bees.", appearance="tall", personality="calm",
        avatar_description="a beekeeper", interests=["bees"], speaking_style="plain",
    )  # fmt: skip
    post = PostDetail(content="Honey day.", image_prompt="jars", mood="glad", context="")
    for key, data in (
        (character_key(world_id, "ada", "profile.json"), ada.model_dump_json().encode()),
        (post_key(world_id, "ada", 1, "json"), b'{"content": "no mood, no prompt"}'),
        (post_key(world_id, "ada", 2, "json"), post.model_dump_json().encode()),
        (character_key(world_id, "bob", "profile.json"), b"{not json"),
    ):
        await store.put(key, data, "application/json")
    request = ObserveRequest(run_id=world_id, pipeline="world", tenant="local", seen=Seen(), first_seq=1, wait_s=0)
    observer = RunObserver(store, Settings(LLM_API_KEY=None, ATELIER_DATA_DIR=str(tmp_path)))
    with caplog.at_level(logging.WARNING, logger="atelier.world_layout"):
        batch = await ActivityEnvironment(client).run(observer.observe_run, request)
    found = [(e.type, e.data.get("username"), e.data.get("number")) for e in batch.events]
    assert found == [
        ("run.started", None, None),
        ("character.created", "ada", None),
        ("post.created", "ada", 2),
        ("run.failed", None, None),
    ]
    assert batch.seen.closed and sorted(batch.seen.done) == ["ada", "bob"]
    skipped = [r.getMessage() for r in caplog.records if r.name == "atelier.world_layout"]
    assert len(skipped) == 2 and "posts/001.json" in skipped[0] and "bob/profile.json" in skipped[1]

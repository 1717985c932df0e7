"""The model is the run's: each paid call goes to the model its run chose (catalog ids on the job, a
conversation's config), a run that chose none to the catalog's defaults, and every result names the model that
made each artifact (an image iteration, a world's posts, avatars and profiles, a meme, a reply)."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageStat
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.providers import Providers
from activities.run_events import RunObserver
from kit.storage import LocalStore
from models.catalog import ModelChoice, from_settings, read_catalog
from models.conversation import ConversationConfig, ConversationStart
from models.events import ObserveRequest, Seen
from models.image import ImageJob
from models.meme import MemeJob
from models.settings import IMAGE_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE, Settings
from models.world import CharacterManifest, WorldJob, WorldManifest
from tests.fake_openai import FakeOpenAI
from workers.registry import build_workers
from workflows.conversation import ConversationWorkflow
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.meme import MemeWorkflow
from workflows.world import WorldWorkflow

QUEUES = [WORKFLOW_QUEUE, TEXT_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE]  # no scoring worker: the runs score without it
PICTURES_KEY = "sk-pictures"


@pytest.fixture
def servers() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    """One server for text and evaluation, another (with its own key) for pictures."""
    text, pictures = FakeOpenAI(), FakeOpenAI(api_key=PICTURES_KEY)
    text.start()
    pictures.start()
    yield text, pictures
    text.stop()
    pictures.stop()


@contextlib.asynccontextmanager
async def workers(client: Client, providers: Providers, folder: Path) -> AsyncIterator[LocalStore]:
    store = LocalStore(folder / "store")
    async with contextlib.AsyncExitStack() as stack:
        for worker in build_workers(client, QUEUES, providers, store, providers.settings):
            await stack.enter_async_context(worker)
        yield store


def two_servers(tmp_path: Path, text: FakeOpenAI, pictures: FakeOpenAI) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(f"""
[[models]]
id = "writer"
kinds = ["text", "eval"]
base_url = "{text.url}"
model = "w-1"
default = true

[[models]]
id = "writer-2"
kinds = ["text"]
base_url = "{text.url}"
model = "w-2"

[[models]]
id = "painter"
kinds = ["image"]
base_url = "{pictures.url}"
api_key_env = "ATELIER_TEST_PICTURES_KEY"
model = "p-1"
image_api = "images"
default = true

[[models]]
id = "painter-2"
kinds = ["image"]
base_url = "{pictures.url}"
api_key_env = "ATELIER_TEST_PICTURES_KEY"
model = "p-2"
image_api = "images"
""")
    return path


def asked(server: FakeOpenAI) -> list[tuple[str, str]]:
    """Each request a server got: its path's last part and the model it named."""
    return [(r.path.rsplit("/", 1)[-1], r.body["model"]) for r in server.requests]


async def test_a_run_takes_text_from_one_server_and_pictures_from_another_as_it_chose(
    time_env, servers, tmp_path, monkeypatch
):
    text, pictures = servers
    monkeypatch.setenv("ATELIER_TEST_PICTURES_KEY", PICTURES_KEY)
    settings = Settings(ATELIER_DATA_DIR=str(tmp_path), LLM_TIMEOUT_S=10)
    providers = Providers(read_catalog(two_servers(tmp_path, text, pictures)), settings)
    loop = {"prompt": "a glass lighthouse", "max_iterations": 2, "threshold": 100, "technical_weight": 0}
    chosen = ImageJob(**loop, models=ModelChoice(text="writer-2", image="painter-2"))
    async with workers(time_env.client, providers, tmp_path) as store:
        result = await time_env.client.execute_workflow(
            ImageRefinementWorkflow.run, chosen, id=f"chosen-{uuid.uuid4().hex[:6]}", task_queue=WORKFLOW_QUEUE
        )
        events = await observed(time_env.client, store, settings, result.workflow_id, "image")
        assert asked(pictures) == [("generations", "p-2")] * 2, "the pictures from the chosen model, on its server"
        assert sorted(set(asked(text))) == [("completions", "w-1"), ("completions", "w-2")]
        assert [m for _, m in asked(text)].count("w-2") == 1, "the refinement by the chosen text model"
        assert [(it.model, it.eval_model) for it in result.iterations] == [("painter-2", "writer")] * 2
        assert set(result.usage.models) == {"writer", "writer-2", "painter-2"}, "usage by catalog id"
        assert [e.data["model"] for e in events if e.type == "iteration.completed"] == ["painter-2"] * 2

        text.requests.clear()
        pictures.requests.clear()
        default = ImageJob(**loop)  # a run that chose nothing, as every run before the choice
        result = await time_env.client.execute_workflow(
            ImageRefinementWorkflow.run, default, id=f"default-{uuid.uuid4().hex[:6]}", task_queue=WORKFLOW_QUEUE
        )
    assert asked(pictures) == [("generations", "p-1")] * 2
    assert set(asked(text)) == {("completions", "w-1")}
    assert [it.model for it in result.iterations] == ["painter", "painter"]


async def observed(client: Client, store: LocalStore, settings: Settings, run_id: str, pipeline: str) -> list:
    """The events one look at a finished run finds (as the events worker records them)."""
    look = ObserveRequest(run_id=run_id, pipeline=pipeline, tenant="local", seen=Seen(), first_seq=1, wait_s=0)
    return (await ActivityEnvironment(client).run(RunObserver(store, settings).observe_run, look)).events


def saturation(data: bytes) -> float:
    with Image.open(io.BytesIO(data)) as image:
        return ImageStat.Stat(image.convert("RGB").convert("HSV")).mean[1]


async def test_a_world_meme_and_conversation_name_the_offline_models_they_chose(dev_env, tmp_path):
    settings = Settings(ATELIER_PROVIDER="offline", ATELIER_DATA_DIR=str(tmp_path))
    providers = Providers(from_settings(settings), settings)
    client = dev_env.client
    async with workers(client, providers, tmp_path) as store:
        world = WorldJob(
            prompt="A harbour town of kite makers",
            characters=1,
            posts_per_character=3,
            scoring=False,
            models=ModelChoice(text="offline-vivid", image="offline-sketch"),
        )
        world_id = f"world-{uuid.uuid4().hex[:6]}"
        made = await client.execute_workflow(WorldWorkflow.run, world, id=world_id, task_queue=WORKFLOW_QUEUE)
        manifest = WorldManifest.model_validate_json(await store.read(made.manifest.key))
        assert manifest.model == "offline-vivid"
        assert manifest.image_models == {"background": "offline-sketch", "icon": "offline-sketch"}
        (character,) = manifest.characters
        assert isinstance(character, CharacterManifest) and character.model == "offline-vivid"
        assert character.avatar_model == "offline-sketch"
        assert saturation(await store.read(character.avatar.key)) < 5, "the avatar is the sketch model's"
        assert character.posts and {post.model for post in character.posts} == {"offline-vivid"}
        pictured = [post for post in character.posts if post.image]
        assert {post.image_model for post in pictured} <= {"offline-sketch"}
        assert set(made.status.usage.models) == {"offline-vivid", "offline-sketch"}
        events = await observed(client, store, settings, world_id, "world")
        assert events[0].data["models"] == {"text": "offline-vivid", "image": "offline-sketch", "eval": "offline"}
        made_by = {(e.type, e.data.get("kind")): e.data["model"] for e in events if "model" in e.data}
        assert made_by == {
            ("character.created", None): "offline-vivid",
            ("post.created", None): "offline-vivid",
            ("image.created", "avatar"): "offline-sketch",
            ("image.created", "background"): "offline-sketch",
            ("image.created", "icon"): "offline-sketch",
        } | ({("image.created", "post"): "offline-sketch"} if pictured else {})

        memes = {}
        for image_model in ("offline-vivid", "offline-sketch"):  # the same topic: the models are in the cache key
            job = MemeJob(topic="mondays at the harbour", models=ModelChoice(image=image_model))
            meme_id = f"meme-{uuid.uuid4().hex[:6]}"
            memes[image_model] = await client.execute_workflow(
                MemeWorkflow.run, job, id=meme_id, task_queue=WORKFLOW_QUEUE
            )
            pictures = [
                e for e in await observed(client, store, settings, meme_id, "meme") if e.type == "image.created"
            ]
            assert pictures and {e.data["model"] for e in pictures} == {image_model}, "the meme's events name it"
        assert [(m.cache, m.image_model, m.text_model) for m in memes.values()] == [
            ("miss", "offline-vivid", "offline"),
            ("miss", "offline-sketch", "offline"),
        ]

        config = ConversationConfig(models=ModelChoice(text="offline-sketch"), stream=False)
        handle = await client.start_workflow(
            ConversationWorkflow.run,
            ConversationStart(config=config),
            id=f"chat-{uuid.uuid4().hex[:6]}",
            task_queue=WORKFLOW_QUEUE,
        )
        reply = await handle.execute_update(ConversationWorkflow.ask, "I keep bees on my roof.")
        await handle.signal(ConversationWorkflow.end)
        history = await handle.result()
    assert reply.model == "offline-sketch" and history.recent[-1].model == "offline-sketch"
    assert set(history.usage.models) == {"offline-sketch"}

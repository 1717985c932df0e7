"""Record finished workflow histories into tests/histories/ for the replay tests.

Run after changing a workflow on purpose: `python -m tests.record_history [image world meme conversation
knowledge]` (all when none is named). Re-record only what changed: the old histories are what running
workflows of the old code look like.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import tempfile
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from activities.storage import LocalStore, artifact_key
from models.conversation import ConversationConfig, ConversationStart, IngestDoc, IngestJob
from models.image import ImageJob, ImageOptions
from models.meme import MemeJob
from models.settings import WORKFLOW_QUEUE
from models.world import WorldJob
from tests.conftest import TEST_SERVER, running_workers
from workflows.conversation import ConversationWorkflow
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.knowledge import KnowledgeIngestWorkflow
from workflows.meme import MemeWorkflow
from workflows.world import WorldWorkflow

FOLDER = Path(__file__).parent / "histories"


async def save(handle: WorkflowHandle) -> None:
    """One file per run, named after its workflow id (replay needs the real id)."""
    history = await handle.fetch_history()
    (FOLDER / f"{handle.id}.json").write_text(history.to_json())
    print(f"wrote {handle.id}.json ({len(history.events)} events)")


async def record_image(client: Client) -> None:
    job = ImageJob(prompt="a golden ring with a red ruby", options=ImageOptions(), max_iterations=3, threshold=100)
    handle = await client.start_workflow(
        ImageRefinementWorkflow.run, job, id="recorded-image-run", task_queue=WORKFLOW_QUEUE
    )
    await handle.signal(ImageRefinementWorkflow.feedback, "more gold")
    await handle.result()
    await save(handle)


async def record_world(client: Client) -> None:
    job = WorldJob(prompt="A lighthouse town of storm chasers", characters=2, posts_per_character=3)
    handle = await client.start_workflow(WorldWorkflow.run, job, id="recorded-world", task_queue=WORKFLOW_QUEUE)
    result = await handle.result()
    await save(handle)
    first = (
        result.status.world_id
        + "--"
        + sorted(
            e.start_child_workflow_execution_initiated_event_attributes.workflow_id.split("--")[1]
            for e in (await handle.fetch_history()).events
            if e.HasField("start_child_workflow_execution_initiated_event_attributes")
        )[0]
    )
    await save(client.get_workflow_handle(first))


async def record_meme(client: Client) -> None:
    job = MemeJob(topic="working from home", format="auto", max_refinements=2, target_score=0.8)
    handle = await client.start_workflow(MemeWorkflow.run, job, id="recorded-meme", task_queue=WORKFLOW_QUEUE)
    await handle.result()
    await save(handle)


async def record_conversation(client: Client) -> None:
    """The first run of a conversation: three turns (one by signal), then continue-as-new."""
    start = ConversationStart(config=ConversationConfig(continue_after_turns=3))
    handle = await client.start_workflow(
        ConversationWorkflow.run, start, id="recorded-conversation", task_queue=WORKFLOW_QUEUE
    )
    first_run = (await handle.describe()).run_id
    await handle.execute_update(ConversationWorkflow.ask, "I keep three beehives on my roof in Lisbon.")
    await handle.signal(ConversationWorkflow.tell, "My cat is called Pixel.")
    await handle.execute_update(ConversationWorkflow.ask, "Where are my beehives?")
    await handle.execute_update(ConversationWorkflow.ask, "What is my cat called?")
    await handle.signal(ConversationWorkflow.end)
    await handle.result()
    await save(client.get_workflow_handle(handle.id, run_id=first_run))


async def record_knowledge(client: Client, store: LocalStore) -> None:
    """Two documents chunked and embedded on the scoring queue."""
    docs = []
    for name, text in (("bees.md", "# Bees\n\nBees cluster in winter.\n\n## Roofs\n\nWind matters."),
                       ("bread.md", "# Sourdough\n\nFeed the starter daily.")):  # fmt: skip
        data = text.encode()
        digest = hashlib.sha256(data).hexdigest()[:16]
        ref = await store.put(artifact_key("kb", "sources", f"{digest}-{name}"), data, "text/plain")
        docs.append(IngestDoc(name=name, source=ref))
    handle = await client.start_workflow(
        KnowledgeIngestWorkflow.run, IngestJob(docs=docs), id="recorded-knowledge", task_queue=WORKFLOW_QUEUE
    )
    await handle.result()
    await save(handle)


async def main(which: list[str]) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp))
        recorders = {
            "image": lambda: record_image(env.client),
            "world": lambda: record_world(env.client),
            "meme": lambda: record_meme(env.client),
            "conversation": lambda: record_conversation(env.client),
            "knowledge": lambda: record_knowledge(env.client, store),
        }
        async with running_workers(env.client, GuardedProvider(OfflineProvider(), None), store):
            for name in which or recorders:
                await recorders[name]()
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

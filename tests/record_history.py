"""Record finished workflow histories into tests/histories/ for the replay tests.

Run after changing a workflow on purpose: `python -m tests.record_history [--searchable] [image world meme
conversation knowledge]` (all when none is named). Re-record only what changed: the old histories are what
running workflows of the old code look like. `--searchable` records runs started with Atelier's search
attributes (as the CLI starts them on a server that has them) on a dev server, as `searchable-*.json`.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from activities.storage import LocalStore, artifact_key
from models.conversation import ConversationConfig, ConversationStart, IngestDoc, IngestJob
from models.image import ImageJob, ImageOptions
from models.meme import MemeJob
from models.search_attributes import at_start
from models.settings import WORKFLOW_QUEUE
from models.world import WorldJob
from starter.services import dev_server_flags
from tests.conftest import TEMPORAL, TEST_SERVER, running_workers
from workflows.conversation import ConversationWorkflow
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.knowledge import KnowledgeIngestWorkflow
from workflows.meme import MemeWorkflow
from workflows.world import WorldWorkflow

FOLDER = Path(__file__).parent / "histories"


@dataclass(frozen=True)
class Recording:
    client: Client
    searchable: bool = False

    def start(self, pipeline: str, workflow_id: str) -> dict[str, Any]:
        """`start_workflow` keywords: the id (prefixed when searchable), queue and, when searchable, attributes."""
        if not self.searchable:
            return {"id": workflow_id, "task_queue": WORKFLOW_QUEUE}
        workflow_id = workflow_id.replace("recorded-", "searchable-")
        return {
            "id": workflow_id,
            "task_queue": WORKFLOW_QUEUE,
            "search_attributes": at_start(pipeline, "offline", workflow_id),
            "static_summary": f"{pipeline} · recorded",
        }


async def save(handle: WorkflowHandle) -> None:
    """One file per run, named after its workflow id (replay needs the real id)."""
    history = await handle.fetch_history()
    (FOLDER / f"{handle.id}.json").write_text(history.to_json())
    print(f"wrote {handle.id}.json ({len(history.events)} events)")


async def record_image(rec: Recording) -> None:
    client = rec.client
    job = ImageJob(prompt="a golden ring with a red ruby", options=ImageOptions(), max_iterations=3, threshold=100)
    handle = await client.start_workflow(ImageRefinementWorkflow.run, job, **rec.start("image", "recorded-image-run"))
    await handle.signal(ImageRefinementWorkflow.feedback, "more gold")
    await handle.result()
    await save(handle)


async def record_world(rec: Recording) -> None:
    client = rec.client
    job = WorldJob(prompt="A lighthouse town of storm chasers", characters=2, posts_per_character=3)
    handle = await client.start_workflow(WorldWorkflow.run, job, **rec.start("world", "recorded-world"))
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


async def record_meme(rec: Recording) -> None:
    client = rec.client
    job = MemeJob(topic="working from home", format="auto", max_refinements=2, target_score=0.8)
    handle = await client.start_workflow(MemeWorkflow.run, job, **rec.start("meme", "recorded-meme"))
    await handle.result()
    await save(handle)


async def record_conversation(rec: Recording) -> None:
    """The first run of a conversation: three turns (one by signal), then continue-as-new."""
    client = rec.client
    start = ConversationStart(config=ConversationConfig(continue_after_turns=3))
    handle = await client.start_workflow(
        ConversationWorkflow.run, start, **rec.start("conversation", "recorded-conversation")
    )
    first_run = (await handle.describe()).run_id
    await handle.execute_update(ConversationWorkflow.ask, "I keep three beehives on my roof in Lisbon.")
    await handle.signal(ConversationWorkflow.tell, "My cat is called Pixel.")
    await handle.execute_update(ConversationWorkflow.ask, "Where are my beehives?")
    await handle.execute_update(ConversationWorkflow.ask, "What is my cat called?")
    await handle.signal(ConversationWorkflow.end)
    await handle.result()
    await save(client.get_workflow_handle(handle.id, run_id=first_run))


async def record_knowledge(rec: Recording, store: LocalStore) -> None:
    """Two documents chunked and embedded on the scoring queue."""
    client = rec.client
    docs = []
    for name, text in (("bees.md", "# Bees\n\nBees cluster in winter.\n\n## Roofs\n\nWind matters."),
                       ("bread.md", "# Sourdough\n\nFeed the starter daily.")):  # fmt: skip
        data = text.encode()
        digest = hashlib.sha256(data).hexdigest()[:16]
        ref = await store.put(artifact_key("kb", "sources", f"{digest}-{name}"), data, "text/plain")
        docs.append(IngestDoc(name=name, source=ref))
    handle = await client.start_workflow(
        KnowledgeIngestWorkflow.run, IngestJob(docs=docs), **rec.start("knowledge", "recorded-knowledge")
    )
    await handle.result()
    await save(handle)


async def main(which: list[str]) -> None:
    searchable = "--searchable" in which
    which = [name for name in which if name != "--searchable"]
    if searchable:  # the time-skipping server has no custom search attributes
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(TEMPORAL),
            dev_server_extra_args=dev_server_flags(),
            data_converter=pydantic_data_converter,
            ui=False,
        )
    else:
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
        )
    rec = Recording(env.client, searchable)
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp))
        recorders = {
            "image": lambda: record_image(rec),
            "world": lambda: record_world(rec),
            "meme": lambda: record_meme(rec),
            "conversation": lambda: record_conversation(rec),
            "knowledge": lambda: record_knowledge(rec, store),
        }
        async with running_workers(env.client, GuardedProvider(OfflineProvider(), None), store):
            for name in which or recorders:
                await recorders[name]()
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

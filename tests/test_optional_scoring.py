"""The scoring worker is optional, and a busy one is not an absent one (#27 items 2 and 3).

With no worker polling `atelier-scoring`, every pipeline started with default settings completes at once,
without its scores, and says so (the knowledge base, which is nothing but scoring work, refuses at once,
saying why). With a scoring worker that is there but busy, scoring calls wait their turn: before, a call
queued 60 s behind a busy worker's slots failed as if nobody were there.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from temporalio.client import WorkflowFailureError

from activities.knowledge import KnowledgeActivities
from activities.providers.offline import OfflineProvider
from activities.scoring import load_models
from kit.storage import LocalStore
from models.conversation import ConversationConfig, ConversationStart, IngestDoc, IngestJob
from models.image import ImageJob
from models.meme import MemeJob
from models.settings import SCORING_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE, Settings
from models.world import WorldJob
from tests.conftest import eventually, running_workers, wait_for_pollers
from workers.registry import QUEUES, SCORING_SLOTS, activity_worker
from workflows.conversation import ConversationWorkflow
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.knowledge import KnowledgeIngestWorkflow
from workflows.meme import MemeWorkflow
from workflows.world import WorldWorkflow

pytestmark = pytest.mark.slow  # real servers, real time
ABSENT = "no worker polls atelier-scoring"
OLD_WAIT_S = 60  # the schedule-to-start timeout scoring calls had


def run_id(name: str) -> dict[str, str]:
    return {"id": f"{name}-{uuid.uuid4().hex[:8]}", "task_queue": WORKFLOW_QUEUE}


async def test_every_pipeline_completes_without_a_scoring_worker_and_says_so(dev_env, tmp_path):
    client, store = dev_env.client, LocalStore(tmp_path)
    queues = [queue for queue in QUEUES if queue != SCORING_QUEUE]
    async with running_workers(client, OfflineProvider(), store, queues):
        world_run = await client.start_workflow(
            WorldWorkflow.run,
            WorldJob(prompt="A salt-flat railway town", characters=5, posts_per_character=2, images=False),
            **run_id("world"),
        )
        world = await world_run.result()
        image = await client.execute_workflow(
            ImageRefinementWorkflow.run, ImageJob(prompt="a red fox in snow", max_iterations=1), **run_id("image")
        )
        meme = await client.execute_workflow(
            MemeWorkflow.run, MemeJob(topic="mondays", use_cache=False), **run_id("meme")
        )
        chat = await client.start_workflow(
            ConversationWorkflow.run, ConversationStart(config=ConversationConfig()), **run_id("chat")
        )
        reply = await chat.execute_update(ConversationWorkflow.ask, "What do you know about my bees?")
        ref = await store.put("kb/sources/bees.md", b"# Bees\n\nBees cluster in winter.", "text/markdown")
        with pytest.raises(WorkflowFailureError) as ingest:
            await client.execute_workflow(
                KnowledgeIngestWorkflow.run, IngestJob(docs=[IngestDoc(name="bees.md", source=ref)]), **run_id("kb")
            )
        await chat.terminate("test over")
    failures = [f"{f.step}: {f.error}" for f in world.status.failures]
    assert world.status.characters.created == 5 and world.status.posts.created == 10, "the world kept everything"
    assert any(f.startswith("characters/near-copy check") and ABSENT in f for f in failures), failures
    assert (
        sum(
            f.endswith(f"consistency: {ABSENT} (start one: python -m workers --queue atelier-scoring)")
            for f in failures
        )
        == 5
    )
    [iteration] = image.iterations
    assert iteration.technical is None and iteration.note and "technical score unavailable" in iteration.note
    assert ABSENT in iteration.note
    assert meme.history and all(draft.relevance is None and draft.score is not None for draft in meme.history)
    assert reply.text and any("experience" in d.lower() for d in reply.degraded), reply.degraded
    assert ABSENT in str(ingest.value.cause), "the knowledge base says why it cannot ingest"
    # nothing was sent to the scoring queue to wait there (before: a 60 s schedule-to-start timeout per step)
    events = (await world_run.fetch_history()).events
    key = "activity_task_scheduled_event_attributes"
    scheduled = [getattr(e, key) for e in events if e.HasField(key)]
    assert "require_pollers" in {a.activity_type.name for a in scheduled}
    assert not [a for a in scheduled if a.task_queue.name == SCORING_QUEUE]


class HeldEmbedder:
    """The real MiniLM embedder, with its first calls held until the test lets them go: the scoring
    worker's slots are all busy for as long as the test says."""

    def __init__(self, embedder, held: int) -> None:
        self.embedder, self.held = embedder, held
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.holding = 0

    def embed(self, texts: list[str], batch_size: int = 64):
        with self.lock:
            hold = self.holding < self.held
            self.holding += hold
        if hold:
            self.release.wait(timeout=120)
        return self.embedder.embed(texts, batch_size)


async def test_documents_queued_behind_a_busy_scoring_worker_all_land(dev_env, tmp_path):
    """100 documents through one scoring worker with 4 slots, the first 4 held past the 60 s the old
    schedule-to-start timeout allowed the rest to wait: all 100 are ingested."""
    client, store = dev_env.client, LocalStore(tmp_path)
    settings = Settings()
    embedder = HeldEmbedder(load_models("cpu", None, None).text, held=SCORING_SLOTS)
    knowledge = KnowledgeActivities(store, embedder)  # type: ignore[arg-type]
    docs = []
    for n in range(100):
        text = f"# Note {n}\n\nHive {n} sits on roof {n % 7} and was checked on day {n}."
        docs.append(
            IngestDoc(
                name=f"note-{n}.md", source=await store.put(f"kb/sources/note-{n}.md", text.encode(), "text/markdown")
            )
        )
    scoring = activity_worker(
        client, SCORING_QUEUE, knowledge.activities(), settings, max_concurrent_activities=SCORING_SLOTS
    )
    async with running_workers(client, OfflineProvider(), store, [WORKFLOW_QUEUE, STORAGE_QUEUE, TEXT_QUEUE]), scoring:
        await wait_for_pollers(client, SCORING_QUEUE, kind="activity")  # the run asks the server who polls
        handle = await client.start_workflow(KnowledgeIngestWorkflow.run, IngestJob(docs=docs), **run_id("kb"))
        await eventually(lambda: embedder.holding >= SCORING_SLOTS, 60, "every scoring slot busy")
        await asyncio.sleep(OLD_WAIT_S + 2)  # the other 96 have waited longer than the old timeout allowed
        embedder.release.set()
        summaries = await handle.result()
    assert len(summaries) == 100 and all(s.chunks >= 1 for s in summaries)
    assert len(await store.keys("kb/docs")) == 100

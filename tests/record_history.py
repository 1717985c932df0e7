"""Record finished workflow histories into tests/histories/ for the replay tests.

Run after changing a workflow on purpose: `python -m tests.record_history [--searchable] [NAME ...]` (all
when none is named; NAME is one of `RECORDERS`). Histories are never overwritten: the old ones are what
running workflows of the old code look like, so a name already taken gets the next free `@N` suffix
(`recorded-world@2.json`); the replay test takes the workflow id from before the `@`. `--searchable` records
runs started with Atelier's search attributes (as the CLI starts them on a server that has them) on a dev
server, as `searchable-*.json`.

Besides each pipeline's happy path the corpus holds the paths that matter for replay: a dollar budget
running out (calls waiting on reservations in flight), a cancelled loop, a world with failed steps, a
conversation handing over with messages queued and ending during it, an image loop without a scoring worker,
a picture refused by the provider's safety system, an image loop branched from another's iteration, a
conversation streamed to a subscriber, a world without a scoring worker, a world cancelled while casting, an
experiment continuing as new with a failed cell started again, an experiment cancelled with cells running.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.errors import refused
from activities.providers import Provider, Providers
from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore, artifact_key
from models.admission import AdmissionRequest, AdmissionState, ReleaseRequest
from models.catalog import ModelChoice, from_settings
from models.conversation import ConversationConfig, ConversationStart, ConversationState, IngestDoc, IngestJob
from models.deliveries import DeliveryBatch, DeliveryRecord, EndpointFeed, endpoint_deliveries_id
from models.events import Delivery, EventFeed, delivery_id
from models.experiment import ExperimentPlan, PlannedVariant
from models.image import ImageBranch, ImageJob, ImageOptions, StopReason
from models.life import LifeJob
from models.meme import MemeJob
from models.search_attributes import at_start
from models.settings import EVENTS_QUEUE, SCORING_QUEUE, WORKFLOW_QUEUE, Settings
from models.usage import CostLimit, Price
from models.world import Budget, WorldJob
from starter.chat_cmd import ask
from starter.chat_stream import AnswerView, stream_offset, streamed_send
from starter.services import dev_server_flags
from tests.conftest import TEMPORAL, TEST_SERVER, each_run, running_workers
from workers.registry import QUEUES
from workflows.admission import TenantAdmissionWorkflow
from workflows.conversation import ConversationWorkflow
from workflows.endpoint_deliveries import EndpointDeliveriesWorkflow
from workflows.experiment import ExperimentWorkflow
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.knowledge import KnowledgeIngestWorkflow
from workflows.life import LifeWorkflow
from workflows.meme import MemeWorkflow
from workflows.run_events import RunEventsWorkflow
from workflows.webhook_delivery import WebhookDeliveryWorkflow
from workflows.world import WorldWorkflow

FOLDER = Path(__file__).parent / "histories"


@dataclass(frozen=True)
class Recording:
    client: Client
    store: LocalStore
    searchable: bool = False

    def workers(self, provider: Provider | Providers | None = None, queues: tuple[str, ...] = QUEUES) -> Any:
        """Workers for the queues, with the offline provider unless a recorder needs another one (`Providers`:
        one provider per catalog model)."""
        guarded = (
            provider
            if isinstance(provider, GuardedProvider | Providers)
            else GuardedProvider(provider or OfflineProvider(), None)
        )
        return running_workers(self.client, guarded, self.store, list(queues))

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


def free_name(workflow_id: str, folder: Path = FOLDER) -> Path:
    """`<id>.json`, or the first free `<id>@N.json`: a recorded history is never overwritten."""
    path, n = folder / f"{workflow_id}.json", 1
    while path.exists():
        n += 1
        path = folder / f"{workflow_id}@{n}.json"
    return path


async def save(handle: WorkflowHandle) -> None:
    """One file per run, named after its workflow id (replay needs the real id)."""
    write(handle.id, await handle.fetch_history())


def write(workflow_id: str, history: WorkflowHistory) -> None:
    path = free_name(workflow_id)
    path.write_text(history.to_json())
    print(f"wrote {path.name} ({len(history.events)} events)")


async def record_image(rec: Recording) -> None:
    client = rec.client
    job = ImageJob(prompt="a golden ring with a red ruby", options=ImageOptions(), max_iterations=3, threshold=100)
    handle = await client.start_workflow(ImageRefinementWorkflow.run, job, **rec.start("image", "recorded-image-run"))
    await handle.signal(ImageRefinementWorkflow.feedback, "more gold")
    await handle.result()
    await save(handle)


async def record_image_branch(rec: Recording) -> None:
    """An image loop branched from iteration 2 of another (patched: runs from before start at 1): iterations 1–2
    taken as the parent made them, with a note for the refinement after 2, then iteration 3."""
    client = rec.client
    job = ImageJob(prompt="a silver ring with a blue stone", max_iterations=3, threshold=100)
    parent = await client.execute_workflow(
        ImageRefinementWorkflow.run, job, **rec.start("image", "recorded-image-branch-parent")
    )
    branch = ImageBranch.take(parent.workflow_id, 2, parent.iterations, parent.refusals, ["more silver"], None)
    child = job.model_copy(update={"branch": branch})
    handle = await client.start_workflow(
        ImageRefinementWorkflow.run, child, **rec.start("image", "recorded-image-branch")
    )
    await handle.result()
    await save(handle)


async def record_world(rec: Recording) -> None:
    client = rec.client
    job = WorldJob(prompt="A lighthouse town of storm chasers", characters=2, posts_per_character=3)
    handle = await client.start_workflow(WorldWorkflow.run, job, **rec.start("world", "recorded-world"))
    await handle.result()
    await save_world(client, handle)


async def record_meme(rec: Recording) -> None:
    client = rec.client
    job = MemeJob(topic="working from home", format="auto", max_refinements=2, target_score=0.8)
    handle = await client.start_workflow(MemeWorkflow.run, job, **rec.start("meme", "recorded-meme"))
    await handle.result()
    await save(handle)


async def record_life(rec: Recording) -> None:
    """A small world's life: an event injected as it starts, three ticks, continuing as new after two (the first
    run is recorded)."""
    client = rec.client
    world = WorldJob(prompt="A harbour town of lamplighters", characters=3, posts_per_character=1, images=False)
    made = await client.start_workflow(WorldWorkflow.run, world, **rec.start("world", "recorded-life-world"))
    await made.result()
    job = LifeJob(world_id=made.id, ticks=3, active_share=1.0, batch_size=2, continue_every=2)
    handle = await client.start_workflow(
        LifeWorkflow.run,
        job,
        **rec.start("life", "recorded-life"),
        start_signal="inject_event",
        start_signal_args=["a storm closes the harbour"],
    )
    first_run = (await handle.describe()).run_id
    await handle.result()
    await save(client.get_workflow_handle(handle.id, run_id=first_run))


async def record_life_memory(rec: Recording) -> None:
    """A small world's life that remembers: each tick recalls its characters' memories (on the scoring queue), and
    they reflect every second tick (two ticks)."""
    client = rec.client
    world = WorldJob(prompt="A harbour town of lamplighters", characters=3, posts_per_character=1, images=False)
    made = await client.start_workflow(WorldWorkflow.run, world, **rec.start("world", "recorded-life-memory-world"))
    await made.result()
    job = LifeJob(world_id=made.id, ticks=2, active_share=1.0, batch_size=2, reflect_every=2)
    handle = await client.start_workflow(LifeWorkflow.run, job, **rec.start("life", "recorded-life-memory"))
    await handle.result()
    await save(handle)


async def record_life_pictures(rec: Recording) -> None:
    """A small world's life whose feeds are ranked by meaning (a scoring worker polls) and whose posts ask for
    pictures (an event injected as it starts: the posts about it are pictured), two ticks."""
    client = rec.client
    world = WorldJob(prompt="A harbour town of lamplighters", characters=3, posts_per_character=1, images=False)
    made = await client.start_workflow(WorldWorkflow.run, world, **rec.start("world", "recorded-life-pictures-world"))
    await made.result()
    job = LifeJob(world_id=made.id, ticks=2, active_share=1.0, batch_size=2, reflect_every=0)
    handle = await client.start_workflow(
        LifeWorkflow.run,
        job,
        **rec.start("life", "recorded-life-pictures"),
        start_signal="inject_event",
        start_signal_args=["a storm closes the harbour"],
    )
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


async def record_knowledge(rec: Recording) -> None:
    """Two documents chunked and embedded on the scoring queue."""
    client = rec.client
    docs = []
    for name, text in (("bees.md", "# Bees\n\nBees cluster in winter.\n\n## Roofs\n\nWind matters."),
                       ("bread.md", "# Sourdough\n\nFeed the starter daily.")):  # fmt: skip
        data = text.encode()
        digest = hashlib.sha256(data).hexdigest()[:16]
        ref = await rec.store.put(artifact_key("kb", "sources", f"{digest}-{name}"), data, "text/plain")
        docs.append(IngestDoc(name=name, source=ref))
    handle = await client.start_workflow(
        KnowledgeIngestWorkflow.run, IngestJob(docs=docs), **rec.start("knowledge", "recorded-knowledge")
    )
    await handle.result()
    await save(handle)


PRICED = {"offline": Price(input_per_mtok=100.0, output_per_mtok=400.0, per_image=0.02)}


class FailingEveryThirdImage(OfflineProvider):
    """The offline provider, whose every third picture fails for good: a world with failed steps."""

    def __init__(self) -> None:
        super().__init__()
        self.images = 0

    async def generate_image(self, *args: Any, **kwargs: Any) -> Any:
        self.images += 1
        if self.images % 3 == 0:
            raise ApplicationError("the provider refused this picture", type="ImageRefused", non_retryable=True)
        return await super().generate_image(*args, **kwargs)


class RefusingMarkedPrompts(OfflineProvider):
    """The offline provider, whose safety system refuses pictures of prompts marked `[refuse]`."""

    async def generate_image(self, prompt: str, *args: Any, **kwargs: Any) -> Any:
        if "[refuse]" in prompt:
            raise refused("image from offline", "the prompt was flagged (violence)", "moderation_blocked", 400)
        return await super().generate_image(prompt, *args, **kwargs)

    async def refine_prompt(self, request: Any, notes: Any = None) -> Any:
        refined = await super().refine_prompt(request, notes)
        return refined.model_copy(update={"prompt": refined.prompt.replace("[refuse] ", "")})


async def record_image_refused(rec: Recording) -> None:
    """A refused picture: the prompt is rewritten within policy and the loop goes on (patched)."""
    job = ImageJob(prompt="[refuse] a duel at dawn", max_iterations=2, threshold=100, technical_weight=0)
    async with rec.workers(RefusingMarkedPrompts()):
        handle = await rec.client.start_workflow(
            ImageRefinementWorkflow.run, job, **rec.start("image", "recorded-image-refused")
        )
        result = await handle.result()
    assert len(result.refusals) == 1 and len(result.iterations) == 1
    await save(handle)


async def save_world(client: Client, handle: WorkflowHandle) -> None:
    """The world's history and its first character's."""
    await save(handle)
    events = (await handle.fetch_history()).events
    children = sorted(
        e.start_child_workflow_execution_initiated_event_attributes.workflow_id
        for e in events
        if e.HasField("start_child_workflow_execution_initiated_event_attributes")
    )
    await save(client.get_workflow_handle(children[0]))


async def record_world_budget(rec: Recording) -> None:
    """A dollar budget smaller than the world: calls wait for reservations in flight, then it runs out."""
    cost = CostLimit(max_usd=0.5, text_call_usd=0.12, image_call_usd=0.06, text_floor_usd=0.03, image_floor_usd=0.03)
    job = WorldJob(prompt="A canal city of clockmakers", characters=3, posts_per_character=3, scoring=False)
    job.budget = Budget(cost=cost)
    async with rec.workers(GuardedProvider(OfflineProvider(), None, PRICED)):
        handle = await rec.client.start_workflow(WorldWorkflow.run, job, **rec.start("world", "recorded-world-budget"))
        result = await handle.result()
    assert result.status.budget_exhausted, "the budget was meant to run out"
    await save_world(rec.client, handle)


async def record_world_partial(rec: Recording) -> None:
    """A world some of whose pictures fail for good: COMPLETED_WITH_ERRORS."""
    job = WorldJob(prompt="A desert observatory", characters=2, posts_per_character=2, scoring=False)
    async with rec.workers(FailingEveryThirdImage()):
        handle = await rec.client.start_workflow(WorldWorkflow.run, job, **rec.start("world", "recorded-world-partial"))
        result = await handle.result()
    assert result.status.failures, "some steps were meant to fail"
    await save_world(rec.client, handle)


async def record_image_cancelled(rec: Recording) -> None:
    """An image loop cancelled in its second iteration: it ends with the best so far."""
    job = ImageJob(prompt="a paper boat on a pond", max_iterations=4, threshold=100, technical_weight=0)
    async with rec.workers(OfflineProvider(latency_s=0.3)):
        handle = await rec.client.start_workflow(
            ImageRefinementWorkflow.run, job, **rec.start("image", "recorded-image-cancelled")
        )
        while not (state := await handle.query(ImageRefinementWorkflow.state)) or state.iteration < 2:
            await asyncio.sleep(0.05)
        await handle.cancel()
        result = await handle.result()
    assert result.stopped_because == StopReason.CANCELLED
    await save(handle)


async def record_image_no_scoring(rec: Recording) -> None:
    """No scoring worker: the technical score times out and the loop scores on fidelity alone (patched)."""
    job = ImageJob(prompt="a lantern in fog", max_iterations=2, threshold=100, technical_weight=0.3, scoring_wait_s=2)
    async with rec.workers(queues=tuple(q for q in QUEUES if q != SCORING_QUEUE)):
        handle = await rec.client.start_workflow(
            ImageRefinementWorkflow.run, job, **rec.start("image", "recorded-image-no-scoring")
        )
        result = await handle.result()
    assert all(it.technical is None for it in result.iterations)
    await save(handle)


async def record_world_no_scoring(rec: Recording) -> None:
    """No scoring worker: the near-copy and consistency checks are skipped, saying so (patched)."""
    job = WorldJob(prompt="A salt-flat railway town", characters=3, posts_per_character=2, images=False)
    async with rec.workers(queues=tuple(q for q in QUEUES if q != SCORING_QUEUE)):
        handle = await rec.client.start_workflow(
            WorldWorkflow.run, job, **rec.start("world", "recorded-world-no-scoring")
        )
        result = await handle.result()
    assert any(f.step == "characters/near-copy check" for f in result.status.failures), result.status.failures
    await save_world(rec.client, handle)


async def record_world_cancelled(rec: Recording) -> None:
    """A world cancelled while its characters are cast: no paid call after the cancel (patched)."""
    job = WorldJob(prompt="A reef town of divers", characters=6, posts_per_character=2, images=False, scoring=False)
    async with rec.workers(OfflineProvider(latency_s=0.5)):
        handle = await rec.client.start_workflow(
            WorldWorkflow.run, job, **rec.start("world", "recorded-world-cancelled")
        )
        while (await handle.query(WorldWorkflow.status)).phases["characters"] != "IN_PROGRESS":
            await asyncio.sleep(0.05)
        await handle.cancel()
        with contextlib.suppress(WorkflowFailureError):  # a cancelled world ends CANCELLED
            await handle.result()
    assert (await handle.describe()).status.name == "CANCELED"
    await save(handle)


async def record_conversation_carried(rec: Recording) -> None:
    """A run started as a hand-over starts one, two told messages carried: they are queued before any
    handler runs and answered first, then an ask (patched)."""
    workflow_id = "recorded-conversation-carried"
    state = ConversationState(conversation_id=workflow_id, turns_total=1, runs=2)
    pending = ["Carried 1: my kite is red.", "Carried 2: my boat is green."]
    start = ConversationStart(config=ConversationConfig(), state=state, pending=pending)
    async with rec.workers():
        handle = await rec.client.start_workflow(
            ConversationWorkflow.run, start, **rec.start("conversation", workflow_id)
        )
        reply = await handle.execute_update(ConversationWorkflow.ask, "What colour is my boat?")
        await handle.signal(ConversationWorkflow.end)
        history = await handle.result()
    assert reply.turn == 4 and history.turns_total == 4, (reply.turn, history.turns_total)
    await save(handle)


async def record_conversation_failed_attempts(rec: Recording) -> None:
    """A reply's Action phase malformed on all three attempts, through the real openai SDK: the turn
    completes degraded and the failed attempts' usage is booked (patched)."""
    from activities.providers.openai_provider import OpenAIProvider
    from models.settings import Settings
    from tests.fake_openai import FakeOpenAI, Fault

    fake = FakeOpenAI()
    url = fake.start()
    try:
        fake.fail("chat", *(Fault(malformed=True) for _ in range(9)))
        provider = OpenAIProvider(Settings(LLM_BASE_URL=url, LLM_API_KEY="test-key", LLM_TIMEOUT_S=10))
        start = ConversationStart(config=ConversationConfig())
        async with rec.workers(provider):
            handle = await rec.client.start_workflow(
                ConversationWorkflow.run, start, **rec.start("conversation", "recorded-conversation-failed-attempts")
            )
            reply = await handle.execute_update(ConversationWorkflow.ask, "I keep three beehives on my roof.")
            await handle.signal(ConversationWorkflow.end)
            await handle.result()
    finally:
        fake.stop()
    assert reply.degraded, "the Action phase was meant to fail"
    await save(handle)


async def record_image_path_reference(rec: Recording) -> None:
    """A worker path given as a reference: refused as invalid input before anything runs (patched)."""
    raw = {"prompt": "a cat", "references": ["/etc/atelier/secret.png"], "max_iterations": 1}
    async with rec.workers():
        handle = await rec.client.start_workflow(
            "ImageRefinementWorkflow", raw, **rec.start("image", "recorded-image-path-reference")
        )
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
    assert (await handle.describe()).status.name == "FAILED"
    await save(handle)


async def record_conversation_hand_over(rec: Recording) -> None:
    """A hand-over with messages queued (told, and one asked), then `end` during the next hand-over: every
    run's history (the carried messages are answered before the conversation closes)."""
    start = ConversationStart(config=ConversationConfig(continue_after_turns=2))
    async with rec.workers():
        handle = await rec.client.start_workflow(
            ConversationWorkflow.run, start, **rec.start("conversation", "recorded-conversation-hand-over")
        )
        first_run = (await handle.describe()).run_id
        for i, thing in enumerate(["kite", "boat", "roof"]):
            await handle.signal(ConversationWorkflow.tell, f"Note {i}: my {thing} is red.")
        await handle.execute_update(ConversationWorkflow.ask, "What colour is my boat?")
        for i, thing in enumerate(["cart", "bell", "lamp"]):
            await handle.signal(ConversationWorkflow.tell, f"Later {i}: my {thing} is blue.")
        await handle.signal(ConversationWorkflow.end)
        history = await handle.result()
    assert history.turns_total == 7, history.turns_total
    await save_runs(rec.client, handle.id, first_run)


async def save_runs(client: Client, workflow_id: str, first_run: str) -> None:
    """Every run of a workflow, following continue-as-new from `first_run`."""
    async for history in each_run(client, workflow_id, first_run):
        write(workflow_id, history)


async def record_conversation_streamed(rec: Recording) -> None:
    """Three turns watched as they stream (stream polls, text published by the phases, the stream truncated
    per turn and carried across continue-as-new), then `end` (patched: runs from before do not stream)."""
    start = ConversationStart(config=ConversationConfig(continue_after_turns=2))
    async with rec.workers(OfflineProvider(latency_s=0.3)):
        handle = await rec.client.start_workflow(
            ConversationWorkflow.run, start, **rec.start("conversation", "recorded-conversation-streamed")
        )
        first_run = (await handle.describe()).run_id
        for text in ["I keep three beehives on my roof in Lisbon.", "My cat is called Pixel.", "Where are my bees?"]:
            found = await stream_offset(rec.client, handle)
            assert found is not None, "the conversation streams"
            view = AnswerView(io.StringIO())
            reply = await streamed_send(*found, lambda update_id, t=text: ask(handle, t, update_id=update_id), view)
            assert view.shown == reply.text, (view.shown, reply.text)
        await handle.signal(ConversationWorkflow.end)
        await handle.result()
    await save_runs(rec.client, handle.id, first_run)


async def record_run_events(rec: Recording) -> None:
    """An image run followed for the API: its events recorded batch by batch until the terminal one."""
    job = ImageJob(prompt="a paper lantern", options=ImageOptions(), max_iterations=2, threshold=100)
    run = await rec.client.start_workflow(ImageRefinementWorkflow.run, job, **rec.start("image", "recorded-followed"))
    feed = EventFeed(run_id=run.id, pipeline="image", tenant="local")
    handle = await rec.client.start_workflow(
        RunEventsWorkflow.run, feed, id=f"{run.id}~events", task_queue=WORKFLOW_QUEUE
    )
    await handle.result()
    await save(handle)


async def record_webhook_delivery(rec: Recording) -> None:
    """A delivery whose receiver never answers (a guarded address): tried on a short schedule, then failed."""
    delivery = Delivery(
        delivery_id="recorded-delivery~hook0-00000001",
        run_id="recorded-delivery",
        tenant="local",
        url="http://127.0.0.1:9/hooks",
        payload={"type": "run.started", "timestamp": "2026-12-03T00:00:00Z", "data": {"seq": 1}},
        schedule_s=[0, 5, 300],
    )
    handle = await rec.client.start_workflow(
        WebhookDeliveryWorkflow.run, delivery, id=delivery.delivery_id, task_queue=WORKFLOW_QUEUE
    )
    await handle.result()
    await save(handle)


async def record_admission(rec: Recording) -> None:
    """A tenant's admissions: two runs up to its cap of two, a third refused after its runs are counted
    (neither exists yet: they keep their slots), a fourth refused as late (its API stopped waiting: no count,
    no slot), one released, then continue-as-new carrying the slots."""
    state = AdmissionState(tenant="recorded", runs_query="unused", continue_after=5)
    async with rec.workers(queues=(WORKFLOW_QUEUE, EVENTS_QUEUE)):
        started = await rec.client.start_workflow(
            TenantAdmissionWorkflow.run, state, id="recorded-admission", task_queue=WORKFLOW_QUEUE
        )
        answers = [
            await started.execute_update(TenantAdmissionWorkflow.admit, AdmissionRequest(run_id=run, max_running=2))
            for run in ("recorded.meme-1", "recorded.meme-2", "recorded.meme-3")
        ]
        gone = datetime.now(UTC) - timedelta(seconds=1)
        late = AdmissionRequest(run_id="recorded.meme-4", max_running=2, admit_by=gone)
        answers.append(await started.execute_update(TenantAdmissionWorkflow.admit, late))
        await started.signal(TenantAdmissionWorkflow.release, ReleaseRequest(run_id="recorded.meme-1"))
        first_run = rec.client.get_workflow_handle(started.id, run_id=started.result_run_id)
        while (await first_run.describe()).status.name == "RUNNING":
            await asyncio.sleep(0.05)
    assert [(a.admitted, a.refused_for) for a in answers][2:] == [(False, "running"), (False, "late")], answers
    await save(first_run)


class FailingOnce(OfflineProvider):
    """The offline provider, whose first picture of a prompt marked `[fails]` fails for good (the next one is made)."""

    def __init__(self) -> None:
        super().__init__(latency_s=0.2)
        self.failed: set[str] = set()

    async def generate_image(self, prompt: str, *args: Any, **kwargs: Any) -> Any:
        if "[fails]" in prompt and prompt not in self.failed:
            self.failed.add(prompt)
            raise ApplicationError("the provider refused this picture", type="ImageRefused", non_retryable=True)
        return await super().generate_image(prompt, *args, **kwargs)


def experiment_plan(prompts: list[str], **more: Any) -> ExperimentPlan:
    """An experiment of these rows under two variants, one iteration a cell."""
    return ExperimentPlan(
        pipeline="image",
        workflow_type="ImageRefinementWorkflow",
        text_field="prompt",
        base={"max_iterations": 1, "technical_weight": 0, "options": {"quality": "low"}},
        rows=[{"prompt": prompt} for prompt in prompts],
        variants=[PlannedVariant(name="a"), PlannedVariant(name="b", set={"threshold": 95})],
        **more,
    )


async def record_experiment(rec: Recording) -> None:
    """An experiment continuing as new every 3 cells, a cell failing, `rerun_failed` while it runs (the cell's
    next attempt completes), then the report: every run's history."""
    plan = experiment_plan(["[fails] a red kite", "a blue boat", "a green lamp"], max_parallel=1, continue_after=3)
    async with rec.workers(FailingOnce()):
        handle = await rec.client.start_workflow(
            ExperimentWorkflow.run, plan, **rec.start("experiment", "recorded-experiment")
        )
        first_run = handle.first_execution_run_id
        while not (status := await handle.query(ExperimentWorkflow.status)) or not status.counts["failed"]:
            await asyncio.sleep(0.05)
        rerun = await handle.execute_update(ExperimentWorkflow.rerun_failed)
        result = await handle.result()
    assert rerun.cells == 1 and [o.status for o in result.plan.outcomes] == ["completed"] * 6, result.plan.outcomes
    await save_runs(rec.client, handle.id, first_run)


async def record_experiment_cancelled(rec: Recording) -> None:
    """An experiment cancelled with two cells running: they are cancelled, the rest never start, the report."""
    plan = experiment_plan([f"a paper boat number {n}" for n in range(4)], max_parallel=2)
    plan.base |= {"max_iterations": 4, "threshold": 100}
    async with rec.workers(OfflineProvider(latency_s=0.3)):
        handle = await rec.client.start_workflow(
            ExperimentWorkflow.run, plan, **rec.start("experiment", "recorded-experiment-cancelled")
        )
        while not (status := await handle.query(ExperimentWorkflow.status)) or status.counts["running"] < 2:
            await asyncio.sleep(0.05)
        await handle.cancel()
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
    assert (await handle.describe()).status.name == "CANCELED"
    await save(handle)


async def record_image_models(rec: Recording) -> None:
    """An image loop that chose its picture and judge models (patched: runs from before name none)."""
    job = ImageJob(
        prompt="a paper lantern over a canal",
        max_iterations=2,
        threshold=100,
        models=ModelChoice(image="offline-vivid", eval="offline-sketch"),
    )
    handle = await rec.client.start_workflow(
        ImageRefinementWorkflow.run, job, **rec.start("image", "recorded-image-models")
    )
    result = await handle.result()
    assert {it.model for it in result.iterations} == {"offline-vivid"}, result.iterations
    await save(handle)


async def record_world_models(rec: Recording) -> None:
    """A world that chose its text and picture models; its characters inherit the choice (patched)."""
    job = WorldJob(
        prompt="A cliff village of glassblowers",
        characters=2,
        posts_per_character=2,
        models=ModelChoice(text="offline-vivid", image="offline-sketch"),
    )
    handle = await rec.client.start_workflow(WorldWorkflow.run, job, **rec.start("world", "recorded-world-models"))
    await handle.result()
    await save_world(rec.client, handle)


async def record_meme_models(rec: Recording) -> None:
    """A meme that chose its models: they are part of its cache key, and its result names them (patched)."""
    job = MemeJob(topic="monday stand-ups", models=ModelChoice(text="offline-sketch", image="offline-vivid"))
    handle = await rec.client.start_workflow(MemeWorkflow.run, job, **rec.start("meme", "recorded-meme-models"))
    result = await handle.result()
    assert (result.text_model, result.image_model) == ("offline-sketch", "offline-vivid"), result
    await save(handle)


async def record_conversation_models(rec: Recording) -> None:
    """A conversation whose config chose its text model: every phase names it, each reply says so (patched)."""
    start = ConversationStart(config=ConversationConfig(models=ModelChoice(text="offline-vivid")))
    handle = await rec.client.start_workflow(
        ConversationWorkflow.run, start, **rec.start("conversation", "recorded-conversation-models")
    )
    reply = await handle.execute_update(ConversationWorkflow.ask, "I keep three beehives on my roof.")
    await handle.execute_update(ConversationWorkflow.ask, "Where are my beehives?")
    await handle.signal(ConversationWorkflow.end)
    await handle.result()
    assert reply.model == "offline-vivid", reply
    await save(handle)


async def record_endpoint_deliveries(rec: Recording) -> None:
    """A run's deliveries to one webhook whose receiver never answers (a guarded address): two batches, one of them
    signalled twice (dropped), each delivery tried on a short schedule, then failed and recorded."""
    feed = EndpointFeed(run_id="recorded-endpoint", tenant="local", url="http://127.0.0.1:9/hooks", schedule_s=[0, 1])

    def batch(*seqs: int, last: bool = False) -> DeliveryBatch:
        payloads = [{"type": "post.created", "timestamp": "2026-12-07T00:00:00Z", "data": {"seq": n}} for n in seqs]
        records = [
            DeliveryRecord(delivery_id=delivery_id("recorded-endpoint", 0, n), seq=n, type="post.created", payload=p)
            for n, p in zip(seqs, payloads, strict=True)
        ]
        return DeliveryBatch(deliveries=records, through_seq=seqs[-1], last=last)

    workflow_id = endpoint_deliveries_id("recorded-endpoint", 0)
    start = {"id": workflow_id, "task_queue": WORKFLOW_QUEUE, "start_signal": "deliver"}
    handle = await rec.client.start_workflow(
        EndpointDeliveriesWorkflow.run, feed, start_signal_args=[batch(1, 2)], **start
    )
    await handle.signal(EndpointDeliveriesWorkflow.deliver, batch(1, 2))
    await handle.signal(EndpointDeliveriesWorkflow.deliver, batch(3, last=True))
    assert await handle.result() == 3
    await save(handle)


def offline_models(record: Callable[[Recording], Awaitable[None]]) -> Callable[[Recording], Awaitable[None]]:
    """A recorder run with workers for every queue and one provider per offline model (the catalog with no key)."""

    async def with_workers(rec: Recording) -> None:
        settings = Settings(ATELIER_PROVIDER="offline", ATELIER_CALL_LOG=False)
        async with rec.workers(Providers(from_settings(settings), settings)):
            await record(rec)

    return with_workers


def offline(record: Callable[[Recording], Awaitable[None]]) -> Callable[[Recording], Awaitable[None]]:
    """A recorder run with workers for every queue and the offline provider."""

    async def with_workers(rec: Recording) -> None:
        async with rec.workers():
            await record(rec)

    return with_workers


RECORDERS = {
    "image": offline(record_image),
    "world": offline(record_world),
    "meme": offline(record_meme),
    "life": offline(record_life),
    "life-memory": offline(record_life_memory),
    "life-pictures": offline(record_life_pictures),
    "conversation": offline(record_conversation),
    "knowledge": offline(record_knowledge),
    "world-budget": record_world_budget,
    "world-partial": record_world_partial,
    "image-cancelled": record_image_cancelled,
    "image-no-scoring": record_image_no_scoring,
    "conversation-hand-over": record_conversation_hand_over,
    "image-refused": record_image_refused,
    "conversation-streamed": record_conversation_streamed,
    "world-no-scoring": record_world_no_scoring,
    "world-cancelled": record_world_cancelled,
    "conversation-carried": record_conversation_carried,
    "conversation-failed-attempts": record_conversation_failed_attempts,
    "image-path-reference": record_image_path_reference,
    "run-events": offline(record_run_events),
    "webhook-delivery": offline(record_webhook_delivery),
    "endpoint-deliveries": offline(record_endpoint_deliveries),
    "admission": record_admission,
    "image-models": offline_models(record_image_models),
    "image-branch": offline(record_image_branch),
    "world-models": offline_models(record_world_models),
    "meme-models": offline_models(record_meme_models),
    "conversation-models": offline_models(record_conversation_models),
    "experiment": record_experiment,
    "experiment-cancelled": record_experiment_cancelled,
}


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
    with tempfile.TemporaryDirectory() as tmp:
        rec = Recording(env.client, LocalStore(Path(tmp)), searchable)
        for name in which or RECORDERS:
            await RECORDERS[name](rec)
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

"""Which workflows and activities run on which task queue."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.breaker import Breakers
from activities.conversation import ConversationActivities
from activities.image import ImageActivities
from activities.meme import MemeActivities
from activities.providers import Provider
from activities.storage import ArtifactStore
from activities.world import WorldActivities
from models.settings import PROVIDER_QUEUE, SCORING_QUEUE, WORKFLOW_QUEUE, Settings
from workflows.character import CharacterWorkflow
from workflows.conversation import ConversationWorkflow
from workflows.image_refinement import ImageRefinementWorkflow
from workflows.knowledge import KnowledgeIngestWorkflow
from workflows.meme import MemeWorkflow
from workflows.world import WorldWorkflow

WORKFLOWS = [
    ImageRefinementWorkflow,
    WorldWorkflow,
    CharacterWorkflow,
    MemeWorkflow,
    ConversationWorkflow,
    KnowledgeIngestWorkflow,
]
QUEUES = (WORKFLOW_QUEUE, PROVIDER_QUEUE, SCORING_QUEUE)
STICKY_TIMEOUT = timedelta(seconds=3)


def provider_activities(provider: Provider, store: ArtifactStore, settings: Settings) -> list:
    image = ImageActivities(provider, store, settings.allow_private_urls)
    world = WorldActivities(provider, store)
    breakers = getattr(provider, "breakers", None) or Breakers.from_settings(settings)
    models = "offline" if provider.name == "offline" else f"{provider.name}:{settings.llm_model}:{settings.image_model}"
    meme = MemeActivities(provider, store, breakers.upload, models)
    return [
        image.store_references,
        image.generate_image,
        image.evaluate_image,
        image.refine_prompt,
        world.describe_world,
        world.world_image,
        world.character_batch,
        world.character_detail,
        world.character_avatar,
        world.post_batch,
        world.post_detail,
        world.post_image,
        world.write_character_manifest,
        world.write_world_manifest,
        *meme.activities(),
        *ConversationActivities(provider, store).activities(),
    ]


def build_workers(
    client: Client,
    queues: list[str],
    provider: Provider,
    store: ArtifactStore,
    settings: Settings | None = None,
) -> list[Worker]:
    settings = settings or Settings()
    workers = []
    if WORKFLOW_QUEUE in queues:
        # A workflow's next task waits this long for the worker that cached it before any worker may take
        # it: short, so a crashed worker's workflows move on in seconds (default 10 s).
        workers.append(
            Worker(
                client,
                task_queue=WORKFLOW_QUEUE,
                workflows=WORKFLOWS,
                sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
            )
        )
    if PROVIDER_QUEUE in queues:
        workers.append(
            Worker(
                client,
                task_queue=PROVIDER_QUEUE,
                activities=provider_activities(provider, store, settings),
                max_concurrent_activities=64,
                graceful_shutdown_timeout=timedelta(seconds=10),
            )
        )
    if SCORING_QUEUE in queues:
        from activities.knowledge import KnowledgeActivities  # torch loads only where scoring runs
        from activities.scoring import ScoringActivities

        scoring = ScoringActivities(store, settings)
        knowledge = KnowledgeActivities(store, scoring.models.text)
        workers.append(
            Worker(
                client,
                task_queue=SCORING_QUEUE,
                activities=scoring.activities() + knowledge.activities(),
                max_concurrent_activities=4,
                graceful_shutdown_timeout=timedelta(seconds=10),
            )
        )
    return workers

"""Which workflows and activities run on which task queue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, Worker

from activities.admission import count_tenant_runs
from activities.conversation import ConversationActivities
from activities.experiment_report import ExperimentActivities
from activities.heartbeat import HEARTBEAT_EVERY_S, HeartbeatThroughout
from activities.image import ImageActivities
from activities.life import LifeActivities
from activities.life_memory import LifeMemoryActivities
from activities.meme import MemeActivities
from activities.meme_render import RenderActivities
from activities.providers import Providers
from activities.providers.guarded import GuardedProvider
from activities.purchases import worker_spool
from activities.queue_pollers import require_pollers
from activities.reference_store import ReferenceActivities
from activities.run_events import RunObserver
from activities.webhooks import WebhookSender
from activities.world import WorldActivities
from kit.storage import ArtifactStore
from models.pipelines import PIPELINES
from models.settings import (
    EVENTS_QUEUE,
    IMAGE_QUEUE,
    SCORING_QUEUE,
    STORAGE_QUEUE,
    TEXT_QUEUE,
    WORKFLOW_QUEUE,
    Settings,
)
from workers.versioning import deployment_options
from workflows.admission import TenantAdmissionWorkflow
from workflows.character import CharacterWorkflow
from workflows.conversation import ConversationWorkflow
from workflows.endpoint_deliveries import EndpointDeliveriesWorkflow
from workflows.experiment import ExperimentWorkflow
from workflows.knowledge import KnowledgeIngestWorkflow
from workflows.run_events import RunEventsWorkflow
from workflows.webhook_delivery import WebhookDeliveryWorkflow

WORKFLOWS = [
    *(spec.implementation() for spec in PIPELINES.values()),  # image, world, meme
    CharacterWorkflow,
    ConversationWorkflow,
    KnowledgeIngestWorkflow,
    RunEventsWorkflow,
    WebhookDeliveryWorkflow,
    EndpointDeliveriesWorkflow,
    TenantAdmissionWorkflow,
    ExperimentWorkflow,
]
QUEUES = (WORKFLOW_QUEUE, TEXT_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE, SCORING_QUEUE, EVENTS_QUEUE)
SHUTDOWN_MARGIN_S = 15  # past a request's timeout: reading the reply, storing the picture
SHUTDOWN_S = 60  # a put or a scoring batch finishes well within this
STICKY_TIMEOUT = timedelta(seconds=3)
SCORING_SLOTS = Settings.model_fields["scoring_concurrency"].default  # batched PyTorch calls at once, by default
# Every beat reaches the server within this (the SDK would wait 0.8 x the heartbeat timeout): the
# heartbeat timeout's slack is then all the time a stall may take.
HEARTBEAT_THROTTLE = timedelta(seconds=HEARTBEAT_EVERY_S)


def pollers(settings: Settings) -> PollerBehaviorAutoscaling:
    """Polls per queue that follow the server's hints: one when the queue is idle, up to ATELIER_MAX_POLLERS
    while tasks wait (each poll also waits for a free slot, so slots cap them too)."""
    return PollerBehaviorAutoscaling(minimum=1, initial=min(5, settings.max_pollers), maximum=settings.max_pollers)


def activity_worker(client: Client, queue: str, activities: list, settings: Settings, **options: Any) -> Worker:
    """A worker for `queue`'s activities: heartbeats from every activity's first line to its last, sent on
    promptly, pollers that scale, and a graceful shutdown long enough for the queue's calls in flight."""
    return Worker(
        client,
        task_queue=queue,
        activities=activities,
        activity_task_poller_behavior=pollers(settings),
        graceful_shutdown_timeout=graceful_shutdown(queue, settings),
        interceptors=[HeartbeatThroughout()],
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        **options,
    )


def provider_activities(providers: Providers, store: ArtifactStore, settings: Settings) -> dict[str, list]:
    """The activities that need the providers or the store, by the queue they run on."""
    spool = worker_spool(settings.data_dir)
    image = ImageActivities(providers, store, spool)
    world = WorldActivities(providers, store, spool)
    name = providers.name
    models = "offline" if name == "offline" else f"{name}:{settings.llm_model}:{settings.image_model}"
    meme = MemeActivities(providers, store, spool, providers.upload, models)
    conversation = ConversationActivities(providers, store)
    life = LifeActivities(providers, store, spool)
    memory = LifeMemoryActivities(providers, store)
    return {
        TEXT_QUEUE: [
            image.evaluate_image,
            image.refine_prompt,
            world.describe_world,
            world.character_batch,
            world.character_detail,
            world.post_batch,
            world.post_detail,
            meme.choose_format,
            meme.write_text,
            meme.judge_text,
            *conversation.phases(),
            life.decide_actions,
            *memory.model_steps(),
        ],
        IMAGE_QUEUE: [
            image.generate_image,
            world.world_image,
            world.character_avatar,
            world.post_image,
            meme.generate_scene,
            life.post_picture,
        ],
        STORAGE_QUEUE: [
            ReferenceActivities(store, settings.allow_private_urls).store_references,
            RenderActivities(store).render,
            world.write_character_manifest,
            world.write_world_manifest,
            *meme.storage_steps(),
            conversation.archive_turn,
            ExperimentActivities(store).write_experiment_report,
            require_pollers,
            *life.storage_steps(),
            *memory.storage_steps(),
        ],
    }


def graceful_shutdown(queue: str, settings: Settings) -> timedelta:
    """How long a stopping worker lets its running activities finish before cancelling them: a paid call
    in flight gets as long as one request may take (LLM_TIMEOUT_S) and a little more, so a rolling deploy
    never cancels a picture the provider is already making (and bills) only to ask for it again. Calls
    still waiting on a rate limit have sent nothing; the new workers take them."""
    if queue in (TEXT_QUEUE, IMAGE_QUEUE):
        return timedelta(seconds=settings.llm_timeout_s + SHUTDOWN_MARGIN_S)
    return timedelta(seconds=SHUTDOWN_S)


def paid_call_worker(
    client: Client, queue: str, activities: list, settings: Settings, versioning: dict[str, Any]
) -> Worker:
    """A worker for one kind of paid call: slots per process, and the queue's requests-per-minute limit,
    which the Temporal server enforces across every worker polling the queue."""
    kind = "image" if queue == IMAGE_QUEUE else "text"
    rpm = settings.rpm(kind)
    return activity_worker(
        client,
        queue,
        activities,
        settings,
        max_concurrent_activities=settings.image_concurrency if kind == "image" else settings.text_concurrency,
        max_task_queue_activities_per_second=rpm / 60 if rpm else None,
        **versioning,
    )


def build_workers(
    client: Client,
    queues: list[str],
    provider: Providers | GuardedProvider,
    store: ArtifactStore,
    settings: Settings | None = None,
    workflows: list[type] | None = None,
) -> list[Worker]:
    """One worker per queue asked for; all in the settings' Worker Deployment version when versioning is on.

    `provider`: one provider per catalog model (`Providers`), or one provider for every call (a test's).
    `workflows` replaces the workflow classes (a rollout test runs a changed version beside the current one).
    """
    settings = settings or Settings()
    providers = provider if isinstance(provider, Providers) else Providers.serving(provider, settings)
    versioning = deployment_options(settings)  # the build id digests the workflow code: read it once
    workers = []
    if WORKFLOW_QUEUE in queues:
        # A workflow's next task waits this long for the worker that cached it before any worker may take
        # it: short, so a crashed worker's workflows move on in seconds (default 10 s).
        workers.append(
            Worker(
                client,
                task_queue=WORKFLOW_QUEUE,
                workflows=workflows or WORKFLOWS,
                sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
                max_concurrent_workflow_tasks=settings.workflow_concurrency,
                workflow_task_poller_behavior=pollers(settings),
                **versioning,
            )
        )
    if {TEXT_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE} & set(queues):
        by_queue = provider_activities(providers, store, settings)
        for queue in (TEXT_QUEUE, IMAGE_QUEUE):
            if queue in queues:
                workers.append(paid_call_worker(client, queue, by_queue[queue], settings, versioning))
        if STORAGE_QUEUE in queues:
            workers.append(
                activity_worker(
                    client,
                    STORAGE_QUEUE,
                    by_queue[STORAGE_QUEUE],
                    settings,
                    max_concurrent_activities=settings.storage_concurrency,
                    **versioning,
                )
            )
    if EVENTS_QUEUE in queues:  # mostly waiting: many slots, little work each
        observer, sender = RunObserver(store, settings), WebhookSender(settings, store)
        activities = [observer.observe_run, sender.send_webhook, sender.disable_endpoint, count_tenant_runs]
        activities += [sender.send_webhooks, sender.record_deliveries]
        slots = settings.events_concurrency
        workers.append(
            activity_worker(client, EVENTS_QUEUE, activities, settings, max_concurrent_activities=slots, **versioning)
        )
    if SCORING_QUEUE in queues:
        from activities.knowledge import KnowledgeActivities  # torch loads only where scoring runs
        from activities.scoring import ScoringActivities

        scoring = ScoringActivities(store, settings)
        knowledge = KnowledgeActivities(store, scoring.models.text)
        workers.append(
            activity_worker(
                client,
                SCORING_QUEUE,
                scoring.activities() + knowledge.activities(),
                settings,
                max_concurrent_activities=settings.scoring_concurrency,
                **versioning,
            )
        )
    return workers

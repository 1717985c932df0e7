"""The workflows as the API, the Studio and the CLI call them: each one's type and the run, queries, signals and
updates they use, with their types; never a body. A workflow module imports the activities it schedules, so the
API process, which loads no activity (tests/test_layering.py), starts, queries and signals a workflow through its
interface here, by class and method as ever. The worker runs the classes in `workflows/`; tests/test_layering.py
holds each interface equal to its workflow's definition (its name, and each handler's kind, name and types)."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from models.admission import Admission, AdmissionRequest, AdmissionState, ReleaseRequest
from models.conversation import DocSummary, History, Reply
from models.deliveries import DeliveryBatch, DeliveryRecord, EndpointFeed, RecordedDeliveries
from models.events import Delivery, DeliveryOutcome, EventFeed, Sent
from models.experiment import ExperimentResult, ExperimentStatus, FinishedCells, Rerun
from models.image import ImageJobResult, LoopState
from models.life import LifeResult, LifeStatus
from models.meme import MemeResult, MemeStatus
from models.world import WorldResult, WorldStatus


@workflow.defn
class ImageRefinementWorkflow:
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> ImageJobResult: ...
    @workflow.query
    def state(self) -> LoopState | None: ...
    @workflow.signal
    def feedback(self, text: str) -> None: ...


@workflow.defn
class WorldWorkflow:
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> WorldResult: ...
    @workflow.query
    def status(self) -> WorldStatus | None: ...


@workflow.defn
class MemeWorkflow:
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> MemeResult: ...
    @workflow.query
    def status(self) -> MemeStatus: ...


@workflow.defn
class LifeWorkflow:
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> LifeResult: ...
    @workflow.query
    def status(self) -> LifeStatus | None: ...
    @workflow.signal
    def pause(self) -> None: ...
    @workflow.signal
    def resume(self) -> None: ...
    @workflow.signal
    def stop(self) -> None: ...
    @workflow.signal
    def inject_event(self, text: str) -> None: ...


@workflow.defn
class ConversationWorkflow:
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> History: ...
    @workflow.update
    async def ask(self, text: str) -> Reply: ...
    @workflow.query
    def history(self) -> History | None: ...


@workflow.defn
class KnowledgeIngestWorkflow:
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> list[DocSummary]: ...


@workflow.defn
class TenantAdmissionWorkflow:
    @workflow.run
    async def run(self, state: AdmissionState) -> None: ...
    @workflow.update
    async def admit(self, request: AdmissionRequest) -> Admission: ...
    @workflow.signal
    def release(self, request: ReleaseRequest) -> None: ...


@workflow.defn
class RunEventsWorkflow:
    @workflow.run
    async def run(self, feed: EventFeed) -> int: ...


@workflow.defn
class WebhookDeliveryWorkflow:
    @workflow.run
    async def run(self, delivery: Delivery) -> DeliveryOutcome: ...
    @workflow.query
    def delivery(self) -> Delivery: ...
    @workflow.query
    def attempts(self) -> list[Sent]: ...


@workflow.defn
class EndpointDeliveriesWorkflow:
    @workflow.run
    async def run(self, feed: EndpointFeed) -> int: ...
    @workflow.signal
    def deliver(self, batch: DeliveryBatch) -> None: ...
    @workflow.update
    def redeliver(self, delivery: DeliveryRecord) -> None: ...
    @workflow.query
    def deliveries(self) -> RecordedDeliveries: ...
    @workflow.query
    def delivery(self, delivery_id: str) -> DeliveryRecord | None: ...


@workflow.defn
class ExperimentWorkflow:
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> ExperimentResult: ...
    @workflow.query
    def status(self) -> ExperimentStatus | None: ...
    @workflow.query
    def finished_since(self, after: int) -> FinishedCells | None: ...
    @workflow.update
    def rerun_failed(self) -> Rerun: ...


INTERFACES: tuple[type, ...] = (
    ImageRefinementWorkflow,
    WorldWorkflow,
    MemeWorkflow,
    LifeWorkflow,
    ConversationWorkflow,
    KnowledgeIngestWorkflow,
    TenantAdmissionWorkflow,
    RunEventsWorkflow,
    WebhookDeliveryWorkflow,
    EndpointDeliveriesWorkflow,
    ExperimentWorkflow,
)

"""Following a run for the API: what is new since the last look becomes events, recorded as one batch in
the artifact store before the workflow hears of it. The run is read, never changed, as the API and the Studio
read it (`kit.run_reading`): its status and live state from Temporal, what it made from the store
(`runs/<id>/…`, a world's layout: `kit.world_layout`), its pictures as its pipeline declares them
(`kit.pictures`). A world file that does not parse is skipped with a warning: one bad file never stalls the feed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.experiment_events import look_at_experiment
from activities.life_events import look_at_life
from kit.life_layout import LIFE_PIPELINE
from kit.pictures import LAYOUTS, Pictures
from kit.run_reading import RunReader, describe_or_none
from kit.storage import ArtifactStore, batch_key
from kit.urls import Urls
from kit.world_layout import StoredCharacter, read_or_none
from models.catalog import KINDS, ModelChoice, load_catalog
from models.deliveries import DeliveryBatch, DeliveryRecord, EndpointFeed, endpoint_deliveries_id
from models.events import (
    Batch,
    CharacterSeen,
    ObserveRequest,
    RunEvent,
    Seen,
    Webhook,
    delivery_id,
    shown_url,
)
from models.experiment import EXPERIMENT_PIPELINE
from models.pipelines import PIPELINES
from models.settings import WORKFLOW_QUEUE, Settings
from models.world import CharacterDetail, PostDetail
from workflows.endpoint_deliveries import EndpointDeliveriesWorkflow

POLL_S = 0.5
QUERY_TIMEOUT = timedelta(seconds=3)  # well under the heartbeat timeout: a look never stalls on a query
TERMINAL = {
    WorkflowExecutionStatus.COMPLETED: "run.completed",
    WorkflowExecutionStatus.FAILED: "run.failed",
    WorkflowExecutionStatus.CANCELED: "run.cancelled",
    WorkflowExecutionStatus.TERMINATED: "run.failed",
    WorkflowExecutionStatus.TIMED_OUT: "run.failed",
}


def progress_of(pipeline: str, state: dict[str, Any]) -> dict[str, Any]:
    """The part of a live state that makes a `run.progress` event (not every token count)."""
    progress = {name: state.get(name) for name in PIPELINES[pipeline].progress}
    progress["cost_usd"] = (state.get("usage") or {}).get("estimated_cost_usd")
    return progress


class Look:
    """One look at the run: the events it finds, in order, and what is then seen."""

    def __init__(self, run_id: str, seen: Seen) -> None:
        self.run_id, self.seen = run_id, seen.model_copy(deep=True)
        self.found: list[tuple[str, dict[str, Any]]] = []

    def add(self, event_type: str, /, **data: Any) -> None:
        self.found.append((event_type, {"run_id": self.run_id, **data}))

    def link(self, key: str) -> dict[str, str]:
        """An artifact as events name it: its key (the API, or the webhook, adds the link to fetch it)."""
        return {"key": key}


class RunObserver:
    """The activity that looks; it holds the store and reads Temporal through the worker's client. It
    also hands each batch to the run's webhooks: one signal-with-start per webhook to the workflow that
    delivers its events (`EndpointDeliveriesWorkflow`), not a workflow per event."""

    def __init__(self, store: ArtifactStore, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self.catalog = load_catalog(settings)

    @activity.defn(name="observe_run")
    async def observe_run(self, request: ObserveRequest) -> Batch:
        key = batch_key(request.run_id, request.first_seq)
        if await self.store.exists(key):  # an earlier attempt recorded this batch: it stands
            batch = Batch.model_validate_json(await self.store.read(key))
            await self._deliver(activity.client(), request, batch)
            return batch
        deadline = time.monotonic() + request.wait_s
        while True:
            look = await self._look(activity.client(), request)
            if look.found or look.seen.closed or time.monotonic() >= deadline:
                break
            activity.heartbeat()
            await asyncio.sleep(POLL_S)
        now = datetime.now(UTC)
        events = [
            RunEvent(seq=request.first_seq + n, type=event_type, run_id=request.run_id, timestamp=now, data=data)
            for n, (event_type, data) in enumerate(look.found)
        ]
        batch = Batch(first_seq=request.first_seq, events=events, seen=look.seen)
        if events:
            activity.heartbeat()
            if not await self.store.put_new(key, batch.model_dump_json().encode(), "application/json"):
                # another attempt of this look (one that lost touch, still running) recorded first: its stands
                batch = Batch.model_validate_json(await self.store.read(key))
            await self._deliver(activity.client(), request, batch)
        return batch

    async def _deliver(self, client: Client, request: ObserveRequest, batch: Batch) -> None:
        """The batch's events to each of the run's webhooks: one signal per webhook to its deliveries' workflow
        (started by the first), which drops a batch it already took (this activity retried)."""
        await asyncio.gather(
            *(self._signal_webhook(client, request, n, hook, batch) for n, hook in enumerate(request.webhooks))
        )

    async def _signal_webhook(self, client: Client, request: ObserveRequest, number: int, hook: Webhook, batch: Batch):
        urls = Urls(self.settings)
        deliveries = [
            DeliveryRecord(
                delivery_id=delivery_id(request.run_id, number, event.seq),
                seq=event.seq,
                type=event.type,
                payload={
                    "type": event.type,
                    "timestamp": event.timestamp.isoformat(),
                    "data": urls.with_artifact_links(event.data) | {"seq": event.seq},
                },
            )
            for event in batch.events
            if hook.events is None or event.type in hook.events
        ]
        signal = DeliveryBatch(
            deliveries=deliveries, through_seq=batch.first_seq + len(batch.events) - 1, last=batch.seen.closed
        )
        workflow_id = endpoint_deliveries_id(request.run_id, number)
        if not deliveries:  # nothing for this webhook: only the end of the run, if it has started
            if signal.last:
                with contextlib.suppress(RPCError):  # never started (nothing was ever for it), or over
                    await client.get_workflow_handle(workflow_id).signal(EndpointDeliveriesWorkflow.deliver, signal)
            return
        feed = EndpointFeed(
            run_id=request.run_id,
            tenant=request.tenant,
            url=str(hook.url),
            endpoint_id=hook.endpoint_id,
            schedule_s=self.settings.webhook_schedule_s,
        )
        with contextlib.suppress(WorkflowAlreadyStartedError):  # it ended after the run's last batch: nothing is due
            await client.start_workflow(
                EndpointDeliveriesWorkflow.run,
                feed,
                id=workflow_id,
                task_queue=WORKFLOW_QUEUE,
                start_signal="deliver",
                start_signal_args=[signal],
                static_summary=f"{request.run_id} → {shown_url(str(hook.url))}",
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )

    async def _look(self, client: Client, request: ObserveRequest) -> Look:
        look = Look(request.run_id, request.seen)
        if (described := await describe_or_none(client, request.run_id)) is None:
            return look
        runs = RunReader(client, self.store)
        closed = described.status in TERMINAL
        if request.pipeline != EXPERIMENT_PIPELINE and look.seen.models is None:
            look.seen.models = await self._models(runs, described)
        if not look.seen.started:
            look.seen.started = True
            look.add(
                "run.started", pipeline=request.pipeline, **({"models": look.seen.models} if look.seen.models else {})
            )
        if request.pipeline == EXPERIMENT_PIPELINE:  # no pipeline of its own: its cells are its events
            ending = await look_at_experiment(client, described, look, closed)
            if closed:
                look.seen.closed = True
                look.add(TERMINAL[described.status], **ending)
            return look
        layout = LAYOUTS[PIPELINES[request.pipeline].pictures]
        keys = await runs.stored(described)
        live = None if closed else await self._progress(runs, described, request.pipeline, layout, keys, look)
        if request.pipeline == LIFE_PIPELINE and not await self._life(runs, described, live, look):
            return look  # more of the life's done ticks to send (before its end, if it ended)
        self._pictures(layout, keys, look)
        for username, character in layout.characters(look.run_id, keys).items():
            if username not in look.seen.done:
                await self._character(character, look, closed)
        if closed:
            result = await self._result(runs, described)
            if isinstance(result, dict):
                self._iterations(layout, result, keys, look)
            look.seen.closed = True
            look.add(TERMINAL[described.status], **_ending(result, described.status))
        return look

    async def _models(self, runs: RunReader, run: WorkflowExecution) -> dict[str, str]:
        """The catalog id of the model the run uses for each kind of call: its job's choice, else the catalog's
        default (a run's calls all go to these: no call falls back to another model). Empty for a run started
        before runs chose their models, whose makers are not known."""
        chosen = (await runs.job(run)).get("models")
        if chosen is None:
            return {}
        choice = ModelChoice.model_validate(chosen)
        models = {}
        for kind in KINDS:
            try:
                models[kind] = self.catalog.resolve(kind, choice.of(kind)).id
            except (ValueError, StopIteration):  # the catalog changed since: the id the run asked for, if any
                if (asked := choice.of(kind)) is not None:
                    models[kind] = asked
        return models

    async def _life(self, runs: RunReader, run: WorkflowExecution, live: dict[str, Any] | None, look: Look) -> bool:
        """A life's done ticks as events (`activities.life_events`); True once all are sent. Their spend is the
        life's status (live, or as it ended); a running life whose status no worker answered waits a look."""
        if run.status in TERMINAL:
            result = await self._result(runs, run)
            live = result.get("status") if isinstance(result, dict) else None  # a failed life: no spend known
        elif live is None:
            return True
        return await look_at_life(self.store, look, live, made_by(look, "text"))

    async def _progress(
        self, runs: RunReader, run: WorkflowExecution, pipeline: str, layout: Pictures, keys: set[str], look: Look
    ) -> dict[str, Any] | None:
        """A `run.progress` event when the live status changed; the status as it answered (None: no answer)."""
        status = await runs.status(run, QUERY_TIMEOUT)
        if status is None:
            return None  # no worker answered this time: the next look asks again
        state = status.model_dump(mode="json")
        progress = progress_of(pipeline, state)
        digest = json.dumps(progress, sort_keys=True, separators=(",", ":"))
        if digest != look.seen.progress:
            look.seen.progress = digest
            look.add("run.progress", **progress)
        self._iterations(layout, state, keys, look)
        return state

    def _iterations(self, layout: Pictures, live: dict[str, Any], keys: set[str], look: Look) -> None:
        """Each scored iteration once, with its picture's link and the model that made it (its live status's
        or its result's iterations say; None from runs before models were chosen)."""
        scores = layout.scores(live)
        models = {it.get("number"): it.get("model") for it in live.get("iterations") or [] if isinstance(it, dict)}
        pictures = [key for _, key in layout.stored(look.run_id, keys)]
        for number in range(look.seen.iterations + 1, len(scores) + 1):
            picture = next((k for k in pictures if k.rsplit("/", 1)[-1].startswith(f"iteration-{number:02d}.")), None)
            look.add(
                "iteration.completed",
                number=number,
                score=scores[number - 1],
                image=picture and look.link(picture),
                model=models.get(number),
            )
        look.seen.iterations = max(look.seen.iterations, len(scores))

    def _pictures(self, layout: Pictures, keys: set[str], look: Look) -> None:
        """Each of the run's pictures once (an image run's iterations, a meme, a world's background and icon)."""
        for kind, key in layout.stored(look.run_id, keys):
            if key not in look.seen.pictures:
                look.seen.pictures.append(key)
                look.add("image.created", kind=kind, image=look.link(key), model=made_by(look, "image"))

    async def _character(self, character: StoredCharacter, look: Look, closed: bool) -> None:
        username = character.username
        seen = look.seen.characters.setdefault(username, CharacterSeen())
        finished = closed or character.manifest is not None
        if not seen.created and character.profile is not None:
            profile = await read_or_none(self.store, character.profile, CharacterDetail)
            seen.created = True
            if profile is not None:
                picked = _pick(profile, "display_name", "bio", "interests")
                look.add("character.created", username=username, model=made_by(look, "text"), **picked)
        if character.avatar and not seen.avatar:
            seen.avatar = True
            avatar = look.link(character.avatar)
            look.add("image.created", kind="avatar", username=username, image=avatar, model=made_by(look, "image"))
        numbers = sorted(character.posts)
        for number in numbers:
            picture = character.pictures.get(number)
            later = finished or any(n > number for n in numbers)
            if number in seen.posts or not (picture or later):
                continue  # its picture may still come: the post goes out with it
            post = await read_or_none(self.store, character.posts[number], PostDetail)
            seen.posts.append(number)
            image = look.link(picture) if picture else None
            if post is not None:
                look.add(
                    "post.created",
                    username=username,
                    number=number,
                    image=image,
                    model=made_by(look, "text"),
                    **_pick(post, "content", "hashtags", "mood"),
                )
            if picture:
                seen.pictures.append(number)
                made = made_by(look, "image")
                look.add("image.created", kind="post", username=username, number=number, image=image, model=made)
        if finished and seen.created:
            look.seen.done.append(username)
            del look.seen.characters[username]

    async def _result(self, runs: RunReader, run: WorkflowExecution) -> Any:
        """The finished run's result (as JSON), or its failure's message (a str)."""
        result = await runs.result(run)
        return result.model_dump(mode="json") if result is not None else await runs.failure(run)


def made_by(look: Look, kind: str) -> str | None:
    """The catalog id of the model that made the run's artifacts of this kind (None: not known)."""
    return (look.seen.models or {}).get(kind)


def _ending(result: Any, status: WorkflowExecutionStatus) -> dict[str, Any]:
    if isinstance(result, dict):
        return {"state": result.get("state") or result.get("stopped_because")}
    if isinstance(result, str):
        return {"error": result}
    return {"status": status.name.lower()}


def _pick(value: BaseModel, *names: str) -> dict[str, Any]:
    fields = value.model_dump(mode="json")
    return {name: fields.get(name) for name in names}

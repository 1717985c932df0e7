"""Creating runs (`POST /v1/images`, `/v1/worlds`, `/v1/memes`: `routes/creates.py`), and the reference images
they take (`POST /v1/uploads`).

A create is idempotent under `Idempotency-Key`: the workflow id is derived from the tenant and the key,
the request's digest rides in the run's memo, and the same key with another body is a 409.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import UploadFile
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from kit.references import MAX_BYTES, BadReference, check_url, verify_image
from kit.run_reading import MEMO_RERUN
from kit.storage import make_ref
from models.api import ImageRequest, MemeRequest, RunCreated, RunOptions, WorldRequest
from models.artifacts import ArtifactRef, reference_key
from models.catalog import ModelChoice
from models.events import Webhook
from models.image import ImageJob
from models.meme import SCENE_OPTIONS, MemeJob
from models.pipelines import PipelineSpec
from models.priority import run_priority
from models.settings import WORKFLOW_QUEUE
from models.world import WorldJob, picture_options
from starter import run_labels
from starter.api.caps import admitted
from starter.api.errors import Conflict, Invalid
from starter.api.events import ensure_feed
from starter.api.service import Caller, Service, described
from starter.api.webhooks import guard_webhook
from starter.max_cost import BadBudget, cost_limit_for

MEMO_TENANT, MEMO_REQUEST = "atelier_tenant", "atelier_request_sha256"
OPTIONS = set(RunOptions.model_fields)


def run_id(caller: Caller, pipeline: str, idempotency_key: str | None) -> str:
    """`<tenant>.<pipeline>-…`: from the key when there is one (the same key, the same run)."""
    if idempotency_key is None:
        return f"{caller.tenant}.{pipeline}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"
    digest = hashlib.sha256(f"{caller.tenant}\0{pipeline}\0{idempotency_key}".encode()).hexdigest()
    return f"{caller.tenant}.{pipeline}-{digest[:24]}"


def budget(
    svc: Service, options: RunOptions, models: ModelChoice, image_options: list, references: int = 0, first=("text",)
) -> Any:
    """The run's `CostLimit`, quoted here from the request's `max_cost_usd` and the server's prices of the run's
    `models` (a request cannot carry one: `models.api.ServerCost`)."""
    value = options.max_cost_usd if options.max_cost_usd is not None else svc.settings.max_cost_usd
    try:
        return cost_limit_for(value, svc.settings, image_options, references, first, models, svc.catalog)
    except BadBudget as exc:
        raise Invalid("body.max_cost_usd", str(exc)) from exc


async def check_references(svc: Service, caller: Caller, body: ImageRequest) -> None:
    """URLs pass the same guard as the workers'; uploads must be this tenant's."""
    for n, ref in enumerate(body.references):
        where = f"body.references.{n}"
        if isinstance(ref, str):
            try:
                await asyncio.to_thread(check_url, ref, svc.settings.allow_private_urls)
            except BadReference as exc:
                raise Invalid(where, str(exc)) from exc
        elif not await uploaded(svc, caller, ref.key):
            raise Invalid(where, f"no upload {ref.key!r} (POST /v1/uploads first)")


async def uploaded(svc: Service, caller: Caller, key: str) -> bool:
    """Whether the caller uploaded `key`: marked in the database, or, by releases before it, in the store."""
    if await asyncio.to_thread(svc.uploads.marked, caller.tenant, key):
        return True
    return await svc.store.exists(f"api/tenants/{caller.tenant}/{key}")


def check_models(svc: Service, choice: ModelChoice, field: str = "body.models") -> None:
    """The run's models are in the catalog, each of the kind it is asked for (`Catalog.problem`, the check the
    CLI makes too): 422 naming the field, e.g. `body.models.image`."""
    if problem := svc.catalog.problem(choice):
        raise Invalid(field + problem[0].removeprefix("models"), problem[1])


async def check(svc: Service, caller: Caller, request: Any) -> None:
    """What every create checks before its job is made: its models, its webhook's URL, and the run it starts
    again from."""
    check_models(svc, request.models)
    if request.webhook and (problem := await guard_webhook(svc.settings, str(request.webhook), "body.webhook")):
        raise problem
    if request.rerun_of and (not caller.owns(request.rerun_of) or await described(svc, request.rerun_of) is None):
        raise Invalid("body.rerun_of", f"no run {request.rerun_of!r}")


async def start(
    svc: Service,
    caller: Caller,
    pipe: PipelineSpec,
    job: Any,
    request: Any,
    key: str | None,
    workflow_id: str | None = None,
    memo: dict[str, Any] | None = None,
) -> RunCreated:
    """Start the run the request asks for (admitted by the tenant's caps) and its event feed; the same
    `Idempotency-Key` again answers the run it started (409 with another request). With `vary`, a matrix: the
    experiment of its cells (`experiments.matrix`), answered as the run it stands for. `workflow_id`: the run's
    own id (a world's life: one per world), answered like an idempotent create when it runs already. `memo`: more
    of the run's memo (a branch's parent)."""
    own_id = workflow_id is not None
    if request.vary:
        from starter.api import experiments  # it builds on this module: imported when a matrix is asked for

        matrix = await experiments.matrix(svc, caller, pipe, request, key)
        return RunCreated(id=matrix.id, pipeline=pipe.name, status=matrix.status, urls=matrix.urls)
    workflow_id = workflow_id or run_id(caller, pipe.name, key)
    digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
    text = getattr(job, pipe.text_field)
    created = RunCreated(id=workflow_id, pipeline=pipe.name, status="running", urls=svc.urls.run_urls(workflow_id))
    feed = (svc, workflow_id, pipe.name, caller.tenant, webhooks_of(svc, caller, request))
    if (key is not None or own_id) and (existing := await described(svc, workflow_id)) is not None:
        same = same_request(existing, digest, created)
        await ensure_feed(*feed)  # an earlier create may have started the run and not its feed
        return same
    async with admitted(svc, caller, workflow_id, pipe.budget(job)):  # the tenant's caps: a slot, or 429/402
        labels = await run_labels.start_options(
            svc.client, svc.settings, pipe.name, text, job, workflow_id, caller.keyed_tenant
        )
        memo = labels["memo"] | (memo or {}) | {MEMO_TENANT: caller.tenant, MEMO_REQUEST: digest}
        if request.rerun_of:
            memo[MEMO_RERUN] = request.rerun_of
        try:
            await svc.client.start_workflow(
                pipe.workflow.run,
                job,
                id=workflow_id,
                task_queue=WORKFLOW_QUEUE,
                priority=run_priority(pipe.name, workflow_id, caller.keyed_tenant),
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                **(labels | {"memo": memo}),
            )
        except WorkflowAlreadyStartedError:  # a concurrent create with the same key won
            if (existing := await described(svc, workflow_id)) is None:
                raise
            created = same_request(existing, digest, created)
    await ensure_feed(*feed)
    return created


def webhooks_of(svc: Service, caller: Caller, request: Any) -> list[Webhook]:
    """The create's own webhook (the tenant's secret) and the tenant's registered endpoints (their own)."""
    own = [Webhook(url=request.webhook, events=request.webhook_events)] if request.webhook else []
    registered = [Webhook(url=e.url, events=e.events, endpoint_id=e.id) for e in svc.keys.endpoints(caller.tenant)]
    return own + registered


def same_request(description: Any, digest: str, created: RunCreated) -> RunCreated:
    memo = description.raw_description.workflow_execution_info.memo.fields
    recorded = memo.get(MEMO_REQUEST)
    if recorded is None or digest not in recorded.data.decode(errors="ignore"):
        raise Conflict("idempotency key reused", "this Idempotency-Key was used with another request body")
    return created.model_copy(update={"status": description.status.name.lower().replace("canceled", "cancelled")})


def _job(model: type, body: Any, **more: Any) -> Any:
    return model.model_validate(body.model_dump(exclude=OPTIONS) | more)


async def image_job(svc: Service, caller: Caller, body: ImageRequest) -> ImageJob:
    await check_references(svc, caller, body)
    refs, first = len(body.references), ("image", "text")
    return _job(ImageJob, body, cost=budget(svc, body, body.models, [body.options], refs, first))


def world_job(svc: Service, body: WorldRequest) -> WorldJob:
    cost = budget(svc, body, body.models, picture_options(body.images))
    return _job(WorldJob, body, budget=body.budget.model_copy(update={"cost": cost}).model_dump())


def meme_job(svc: Service, body: MemeRequest) -> MemeJob:
    words = sorted({*body.blocked_words, *svc.settings.blocked_words})
    return _job(MemeJob, body, blocked_words=words, cost=budget(svc, body, body.models, [SCENE_OPTIONS]))


async def upload(svc: Service, caller: Caller, file: UploadFile) -> ArtifactRef:
    """A reference image, stored under its content address and marked as the caller's."""
    data = await file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise Invalid("body.file", f"larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        image = verify_image(data, file.filename or "upload", svc.settings.upload_max_pixels)
    except BadReference as exc:
        raise Invalid("body.file", str(exc)) from exc
    ref = make_ref(reference_key(hashlib.sha256(data).hexdigest(), image.extension), data, image.content_type)
    if not await svc.store.exists(ref.key):
        await svc.store.put(ref.key, data, ref.content_type)
    await asyncio.to_thread(svc.uploads.mark, caller.tenant, ref.key)
    return ref

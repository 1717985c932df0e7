"""Per-tenant caps: runs at once (429) and dollars per day (402), held by the tenant's admission workflow
(`workflows.admission`): every API process asks it, by update-with-start, to admit a run before starting
it, so creates that race are admitted one at a time against every run already admitted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from models.admission import Admission, AdmissionRequest, AdmissionState, ReleaseRequest, admission_id
from models.pipelines import WORKFLOW_TYPES
from models.settings import WORKFLOW_QUEUE
from starter.api.problems import ApiProblem
from starter.api.service import Caller, Service, described
from workflows.admission import MAX_HELD, TenantAdmissionWorkflow

TOP_LEVEL = f"WorkflowType IN ({', '.join(json.dumps(name) for name in WORKFLOW_TYPES)})"  # the pipelines' runs
log = logging.getLogger("atelier.api")


def tenant_runs(caller: Caller, types: str = TOP_LEVEL) -> str:
    """The visibility filter for a tenant's runs of these types (every one's for the local tenant)."""
    return f'WorkflowId STARTS_WITH "{caller.tenant}." AND {types}' if caller.keyed else types


def reserved_usd(job: Any) -> float:
    """What a run reserves of its tenant's day: its dollar budget (`CostLimit.max_usd`), 0 when it has none."""
    cost = getattr(job, "cost", None) or getattr(getattr(job, "budget", None), "cost", None)
    return cost.max_usd if cost is not None else 0.0


@contextlib.asynccontextmanager
async def admitted(svc: Service, caller: Caller, run_id: str, job: Any) -> AsyncIterator[None]:
    """Hold a slot for the run while the block starts it: 429 or 402 when a cap refuses, 503 when no
    worker answers. A block that fails frees the slot again, unless the run exists. No caps: nothing asked."""
    settings = svc.settings
    if not (settings.tenant_max_running or settings.tenant_max_usd_per_day):
        yield
        return
    request = AdmissionRequest(
        run_id=run_id,
        reserve_usd=reserved_usd(job),
        max_running=settings.tenant_max_running,
        max_usd_per_day=settings.tenant_max_usd_per_day,
    )
    refuse_unless_admitted(await _admit(svc, caller, request), request)
    try:
        yield
    except Exception:
        await _release(svc, caller, run_id)
        raise


def refuse_unless_admitted(admission: Admission, request: AdmissionRequest) -> None:
    """429 for runs at once (with `Retry-After`), 402 for the day's dollars; nothing when admitted."""
    if admission.refused_for == "running":
        most = request.max_running or MAX_HELD
        detail = f"{admission.running} runs are running; this tenant may run {most} at once"
        raise ApiProblem(429, "too many runs at once", detail, {"Retry-After": "30"})
    if admission.refused_for == "budget":
        detail = (
            f"${admission.spent_usd:.2f} spent today and ${admission.reserved_usd:.2f} held by running runs, "
            f"of this tenant's ${request.max_usd_per_day:.2f} a day"
        )
        if request.reserve_usd:
            detail += f"; this run may cost ${request.reserve_usd:.2f}"
        raise ApiProblem(402, "daily budget spent", detail)


async def _admit(svc: Service, caller: Caller, request: AdmissionRequest) -> Admission:
    """Ask the tenant's admission workflow, starting it if it is not running."""
    state = AdmissionState(tenant=caller.tenant, runs_query=tenant_runs(caller))
    start = WithStartWorkflowOperation(
        TenantAdmissionWorkflow.run,
        state,
        id=admission_id(caller.tenant),
        task_queue=WORKFLOW_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"admission · {caller.tenant}",
    )
    try:
        async with asyncio.timeout(svc.settings.admission_wait_s):
            return await svc.client.execute_update_with_start_workflow(
                TenantAdmissionWorkflow.admit, request, start_workflow_operation=start
            )
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        detail = "no workflow worker admitted the run in time"
        raise ApiProblem(503, "no worker answered", detail, {"Retry-After": "5"}) from exc


async def _release(svc: Service, caller: Caller, run_id: str) -> None:
    """Free the slot of a run that did not start (a run that exists keeps it: a census frees it when it ends)."""
    try:
        if await described(svc, run_id) is None:
            handle = svc.client.get_workflow_handle(admission_id(caller.tenant))
            await handle.signal(TenantAdmissionWorkflow.release, ReleaseRequest(run_id=run_id))
    except RPCError as exc:  # the slot is freed by the next count that finds no such run
        log.warning("could not free %s's slot: %s", run_id, exc)

"""Per-tenant caps: runs at once (429) and dollars per day (402), held by the tenant's admission workflow
(`workflows.admission`): every API process asks it, by update-with-start, to admit a run before starting
it, so creates that race are admitted one at a time against every run already admitted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from models.admission import MAX_HELD, Admission, AdmissionRequest, AdmissionState, ReleaseRequest, admission_id
from models.pipelines import LISTED
from models.settings import WORKFLOW_QUEUE
from models.usage import CostLimit
from models.workflow_interfaces import TenantAdmissionWorkflow
from starter.api.errors import BudgetSpent, NoWorker, TooMany
from starter.api.service import Caller, Service, described

# the pipelines' runs and experiments, not an experiment's cells (its children: listed under it)
TOP_LEVEL = f"WorkflowType IN ({', '.join(json.dumps(name) for name in LISTED)}) AND ParentWorkflowId IS NULL"
# Temporal holds at most 10 updates in flight per workflow: each API process sends a tenant's admission
# workflow a few at a time, and keeps a bounded line of creates waiting their turn (429 beyond it).
IN_FLIGHT = 3
WAITING = 16
NOT_ADMITTED = "no workflow worker admitted the run in time"
log = logging.getLogger("atelier.api")


class AdmissionLine:
    """One tenant's creates in this process on their way to its admission workflow: `IN_FLIGHT` asked at a
    time, `WAITING` more in line, the rest refused at once."""

    def __init__(self) -> None:
        self.turns = asyncio.Semaphore(IN_FLIGHT)
        self.queued = 0

    @contextlib.asynccontextmanager
    async def turn(self, wait_s: float) -> AsyncIterator[None]:
        """Its turn within `wait_s` (TimeoutError after), or 429 at once when the line is full."""
        if self.queued >= IN_FLIGHT + WAITING:
            detail = "too many creates of this tenant are waiting for admission"
            raise TooMany("too many runs at once", detail, 1)
        self.queued += 1
        try:
            async with asyncio.timeout(wait_s):
                await self.turns.acquire()
        except BaseException:
            self.queued -= 1
            raise
        try:
            yield
        finally:
            self.turns.release()
            self.queued -= 1


def tenant_runs(caller: Caller, types: str = TOP_LEVEL) -> str:
    """The visibility filter for a tenant's runs of these types (every one's for the local tenant)."""
    return f'WorkflowId STARTS_WITH "{caller.tenant}." AND {types}' if caller.keyed else types


def seconds_left(admit_by: datetime) -> float:
    """What is left of a create's wait for admission (its one deadline, `AdmissionRequest.admit_by`): its turn
    in the line and its update get no longer, and the workflow refuses an answer past it."""
    return max(0.1, (admit_by - datetime.now(UTC)).total_seconds())


@contextlib.asynccontextmanager
async def admitted(svc: Service, caller: Caller, run_id: str, cost: CostLimit | None) -> AsyncIterator[None]:
    """Hold a slot for the run while the block starts it, reserving its dollar budget (`cost`) of the tenant's
    day: 429 or 402 when a cap refuses, 503 when no worker answers in time. A block that fails frees the slot
    again, unless the run exists. No caps: nothing asked."""
    settings = svc.settings
    if not (settings.tenant_max_running or settings.tenant_max_usd_per_day):
        yield
        return
    request = AdmissionRequest(
        run_id=run_id,
        reserve_usd=cost.max_usd if cost is not None else 0.0,
        max_running=settings.tenant_max_running,
        max_usd_per_day=settings.tenant_max_usd_per_day,
        admit_by=datetime.now(UTC) + timedelta(seconds=settings.admission_wait_s),  # then this answers 503
    )
    refuse_unless_admitted(await _admitted_or_refused(svc, caller, request), request)
    try:
        yield
    except BaseException:  # a failed start, or a request cancelled (its client gone, the server stopping)
        await asyncio.shield(_release(svc, caller, run_id))
        raise


def refuse_unless_admitted(admission: Admission, request: AdmissionRequest) -> None:
    """429 for runs at once (with `Retry-After`), 402 for the day's dollars, 503 when the answer came after
    the wait (the workflow holds no slot for it); nothing when admitted."""
    if admission.refused_for == "late":
        raise NoWorker(NOT_ADMITTED)
    if admission.refused_for == "running":
        most = request.max_running or MAX_HELD
        detail = f"{admission.running} runs are running; this tenant may run {most} at once"
        raise TooMany("too many runs at once", detail, 30)
    if admission.refused_for == "budget":
        detail = (
            f"${admission.spent_usd:.2f} spent today and ${admission.reserved_usd:.2f} held by running runs, "
            f"of this tenant's ${request.max_usd_per_day:.2f} a day"
        )
        if request.reserve_usd:
            detail += f"; this run may cost ${request.reserve_usd:.2f}"
        raise BudgetSpent(detail)


def admission_start(state: AdmissionState) -> WithStartWorkflowOperation:
    """The tenant's admission workflow, started with `state` unless it is running already."""
    return WithStartWorkflowOperation(
        TenantAdmissionWorkflow.run,
        state,
        id=admission_id(state.tenant),
        task_queue=WORKFLOW_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"admission · {state.tenant}",
    )


async def _admit(svc: Service, caller: Caller, request: AdmissionRequest) -> Admission:
    """Ask the tenant's admission workflow, starting it if it is not running."""
    start = admission_start(AdmissionState(tenant=caller.tenant, runs_query=tenant_runs(caller)))
    line = svc.admission_lines.setdefault(caller.tenant, AdmissionLine())
    admit_by = request.admit_by or datetime.now(UTC)  # `admitted` always sets it
    try:
        async with line.turn(seconds_left(admit_by)):
            left = timedelta(seconds=seconds_left(admit_by))
            return await svc.client.execute_update_with_start_workflow(
                TenantAdmissionWorkflow.admit, request, start_workflow_operation=start, rpc_timeout=left
            )
    except BaseException:
        await _settled(start)
        raise


async def _admitted_or_refused(svc: Service, caller: Caller, request: AdmissionRequest) -> Admission:
    """`_admit`, with what can go wrong on the way said as problems: 503 in time, 429 when the workflow is full."""
    try:
        return await _admit(svc, caller, request)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise NoWorker(NOT_ADMITTED) from exc
    except RPCError as exc:
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise NoWorker(NOT_ADMITTED) from exc
        if exc.status != RPCStatusCode.RESOURCE_EXHAUSTED:
            raise
        detail = "the tenant's admission is busy with other creates"  # other API processes' admissions
        raise TooMany("too many runs at once", detail, 1) from exc


async def _settled(start: WithStartWorkflowOperation) -> None:
    """Take the start's own outcome of an admission that failed, so its future is not left unread."""
    with contextlib.suppress(BaseException):
        async with asyncio.timeout(1):
            await start.workflow_handle()


async def _release(svc: Service, caller: Caller, run_id: str) -> None:
    """Free the slot of a run that did not start (a run that exists keeps it: a census frees it when it ends)."""
    try:
        if await described(svc, run_id) is None:
            handle = svc.client.get_workflow_handle(admission_id(caller.tenant))
            await handle.signal(TenantAdmissionWorkflow.release, ReleaseRequest(run_id=run_id))
    except RPCError as exc:  # the slot is freed by the next count that finds no such run
        log.warning("could not free %s's slot: %s", run_id, exc)

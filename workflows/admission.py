"""A tenant's admission: admit (a slot per run, holding its dollar budget) ∥ release → continue as new,
carrying the slots.

One workflow per tenant (`admission~<tenant>`), asked by every API process through update-with-start, so
the caps hold however many creates race: admissions run one at a time, each against every slot held.
Which held runs have ended is asked of an activity only when a cap would refuse (and what the tenant's
runs cost today on its first run of the day), so the common path is one update and no activity.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.admission import count_tenant_runs
    from models.admission import (
        MAX_HELD,
        Admission,
        AdmissionRequest,
        AdmissionState,
        Census,
        CensusRequest,
        Refusal,
        ReleaseRequest,
        Slot,
    )
    from models.settings import EVENTS_QUEUE
    from workflows.options import HEARTBEAT_TIMEOUT

COUNT_TRUSTED_FOR = timedelta(seconds=2)  # a refusal this soon after a count trusts it: a flood counts once
UNSTARTED_GRACE = timedelta(minutes=1)  # a held run that does not exist yet may still be starting
COUNT_DEADLINE = timedelta(seconds=15)  # then the caps decide on the slots as they stand


@workflow.defn
class TenantAdmissionWorkflow:
    @workflow.init
    def __init__(self, state: AdmissionState) -> None:
        self._state = state
        self._lock = asyncio.Lock()
        self._handled = 0

    @workflow.query
    def held(self) -> AdmissionState:
        """The slots held and the day's spending as last counted (a copy)."""
        return self._state.model_copy(deep=True)

    @workflow.update
    async def admit(self, request: AdmissionRequest) -> Admission:
        """Admit the run (holding a slot and its dollars) or say which cap refuses it; one at a time, so no
        two admissions see the same free slot. Admitting a run already held answers as before."""
        async with self._lock:
            self._handled += 1
            return await self._admit(request)

    @workflow.signal
    def release(self, request: ReleaseRequest) -> None:
        """Free the slot of a run whose start failed."""
        self._handled += 1
        self._state.slots.pop(request.run_id, None)

    @workflow.run
    async def run(self, state: AdmissionState) -> None:
        """Hold the slots (the handlers do the work) until this run has handled enough, then hand them on."""
        await workflow.wait_condition(
            lambda: self._handled >= self._state.continue_after or workflow.info().is_continue_as_new_suggested()
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        # with Worker Versioning the next run starts on the deployment's current version
        workflow.continue_as_new(
            self._state, initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE
        )

    # ── admitting ────────────────────────────────────────────────────────────────────────────────────────

    async def _admit(self, request: AdmissionRequest) -> Admission:
        state = self._state
        now = workflow.now()
        if request.run_id in state.slots:
            return self._answer(None)
        if self._late(request):
            return self._answer("late")
        refused_for = self._refusal(request)
        if self._count_due(request, refused_for, now):
            await self._count(request.max_usd_per_day > 0, now)
            refused_for = self._refusal(request)
        if refused_for is None and self._late(request):  # counting took past the API's wait
            refused_for = "late"
        if refused_for is None:
            state.slots[request.run_id] = Slot(reserved_usd=request.reserve_usd, admitted_at=now)
        return self._answer(refused_for)

    @staticmethod
    def _late(request: AdmissionRequest) -> bool:
        """Whether the API has stopped waiting (it answered 503): no run would take the slot."""
        return request.admit_by is not None and workflow.now() > request.admit_by

    def _count_due(self, request: AdmissionRequest, refused_for: Refusal | None, now: datetime) -> bool:
        """Count before answering when a cap would refuse, or under a dollar cap on the day's first run or
        for a run without a dollar budget (what the tenant's runs cost is then all that bounds it); unless
        the last count is a moment old."""
        if self._counted_lately(now):
            return False
        dollars = request.max_usd_per_day > 0
        return refused_for is not None or (dollars and (self._state.day != _day(now) or not request.reserve_usd))

    def _refusal(self, request: AdmissionRequest) -> Refusal | None:
        """Which cap refuses the run against the slots held now: "running", "budget", or None."""
        held = len(self._state.slots)
        if (request.max_running and held >= request.max_running) or held >= MAX_HELD:
            return "running"
        committed = self._state.spent_usd + self._committed()
        cap = request.max_usd_per_day
        if cap and (committed >= cap or committed + request.reserve_usd > cap):
            return "budget"
        return None

    def _answer(self, refused_for: Refusal | None) -> Admission:
        return Admission(
            admitted=refused_for is None,
            refused_for=refused_for,
            running=len(self._state.slots),
            spent_usd=self._state.spent_usd,
            reserved_usd=self._committed(),
        )

    def _committed(self) -> float:
        """What the held runs may cost: each its reservation, or what it cost when counted if more."""
        return sum(slot.committed_usd() for slot in self._state.slots.values())

    # ── counting ─────────────────────────────────────────────────────────────────────────────────────────

    def _counted_lately(self, now: datetime) -> bool:
        counted_at = self._state.counted_at
        return counted_at is not None and now - counted_at < COUNT_TRUSTED_FOR

    async def _count(self, with_spending: bool, now: datetime) -> None:
        """Free the slots of runs that ended (and of runs that never started, after a grace), and with
        `with_spending` count what today's runs holding no slot cost. A count that fails changes nothing."""
        state = self._state
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        request = CensusRequest(
            runs_query=state.runs_query, held=sorted(state.slots), since=midnight if with_spending else None
        )
        try:
            census: Census = await workflow.execute_activity(
                count_tenant_runs,
                request,
                summary=f"count {state.tenant}'s runs · {len(request.held)} held",
                task_queue=EVENTS_QUEUE,
                schedule_to_close_timeout=COUNT_DEADLINE,
                start_to_close_timeout=COUNT_DEADLINE,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3),
            )
        except ActivityError as exc:  # tried: the next admissions wait a moment before trying again
            workflow.logger.warning("could not count %s's runs: %s", state.tenant, exc.cause or exc)
            state.counted_at = now
            return
        for run_id in census.ended:
            state.slots.pop(run_id, None)
        for run_id, spent_usd in census.running_usd.items():
            if (slot := state.slots.get(run_id)) is not None:
                slot.spent_usd = spent_usd
        for run_id in census.missing:
            if (slot := state.slots.get(run_id)) is not None and now - slot.admitted_at > UNSTARTED_GRACE:
                del state.slots[run_id]
        if census.spent_usd is not None:
            state.spent_usd, state.day = census.spent_usd, _day(now)
        elif census.ended:  # what they cost is in no count yet: the next admission under a dollar cap counts
            state.day = ""
        state.counted_at = now


def _day(now: datetime) -> str:
    return now.date().isoformat()

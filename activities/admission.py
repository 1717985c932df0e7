"""Counting a tenant's runs for its admission workflow: which held runs have ended (described, so a run that
ended a moment ago is seen at once) and what the tenant's runs since midnight cost (listed, by their cost
search attribute). Read only; asked only when a cap would refuse, or on a tenant's first run of the day."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus

from kit.run_reading import describe_or_none
from models.admission import Census, CensusRequest
from models.search_attributes import COST

DESCRIBED_AT_ONCE = 16  # a tenant may hold hundreds of slots under a dollar cap alone


@activity.defn(name="count_tenant_runs")
async def count_tenant_runs(request: CensusRequest) -> Census:
    """The held runs that ended or never started (and what the others cost so far), and with `since` what
    the tenant's runs since then cost: those holding no slot as listed, the ended ones as described."""
    client = activity.client()
    gate = asyncio.Semaphore(DESCRIBED_AT_ONCE)

    async def described(run_id: str) -> WorkflowExecutionDescription | None:
        async with gate:
            return await describe_or_none(client, run_id)

    census = Census()
    ended_usd = 0.0
    for run_id, found in zip(request.held, await asyncio.gather(*map(described, request.held)), strict=True):
        if found is None:
            census.missing.append(run_id)
        elif found.status == WorkflowExecutionStatus.RUNNING:
            census.running_usd[run_id] = found.typed_search_attributes.get(COST) or 0.0
        else:
            census.ended.append(run_id)
            if request.since is not None and found.start_time >= request.since:
                ended_usd += found.typed_search_attributes.get(COST) or 0.0
    if request.since is not None:
        held = set(request.held)
        since = request.since.isoformat().replace("+00:00", "Z")
        listed_usd = 0.0
        async for run in client.list_workflows(f'{request.runs_query} AND StartTime >= "{since}"'):
            if run.id not in held:
                listed_usd += run.typed_search_attributes.get(COST) or 0.0
        census.spent_usd = listed_usd + ended_usd
    return census

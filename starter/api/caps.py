"""Per-tenant caps: runs at once (429) and dollars per day (402), from the runs Temporal lists."""

from __future__ import annotations

from datetime import UTC, datetime

from models.search_attributes import COST
from starter.api.problems import ApiProblem
from starter.api.service import Caller, Service

TOP_LEVEL = 'WorkflowType IN ("ImageRefinementWorkflow", "WorldWorkflow", "MemeWorkflow")'


def tenant_runs(caller: Caller, types: str = TOP_LEVEL) -> str:
    """The visibility filter for a tenant's runs of these types (every one's for the local tenant)."""
    return f'WorkflowId STARTS_WITH "{caller.tenant}." AND {types}' if caller.keyed else types


async def check_caps(svc: Service, caller: Caller) -> None:
    settings = svc.settings
    if settings.tenant_max_running:
        running = await svc.client.count_workflows(f'{tenant_runs(caller)} AND ExecutionStatus = "Running"')
        if running.count >= settings.tenant_max_running:
            detail = f"{running.count} runs are running; this tenant may run {settings.tenant_max_running} at once"
            raise ApiProblem(429, "too many runs at once", detail, {"Retry-After": "30"})
    if settings.tenant_max_usd_per_day:
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        query = f'{tenant_runs(caller)} AND StartTime >= "{midnight.isoformat().replace("+00:00", "Z")}"'
        spent = 0.0
        async for run in svc.client.list_workflows(query):
            spent += run.typed_search_attributes.get(COST) or 0.0
        if spent >= settings.tenant_max_usd_per_day:
            detail = f"${spent:.2f} spent today of this tenant's ${settings.tenant_max_usd_per_day:.2f} a day"
            raise ApiProblem(402, "daily budget spent", detail)

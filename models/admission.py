"""A tenant's admission: the runs holding its slots (each with the dollars it reserved), what the tenant's
other runs cost today, and the words the API and `TenantAdmissionWorkflow` exchange about a new run."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

# the cap that refuses: runs at once, or the day's dollars; or "late": the API stopped waiting for the answer
Refusal = Literal["running", "budget", "late"]
CONTINUE_AFTER = 500  # messages a run of the admission workflow handles before it continues as new
MAX_HELD = 1000  # slots a tenant may hold whatever its caps: what is carried across continue-as-new stays small


def admission_id(tenant: str) -> str:
    """The tenant's admission workflow: one per tenant, for every API process."""
    return f"admission~{tenant}"


class Slot(BaseModel):
    """A run admitted and not yet seen to end: it counts as running, and as costing what it reserved (or
    what it had cost when last counted, if more: a run without a dollar budget reserves nothing)."""

    reserved_usd: float = Field(ge=0)
    admitted_at: datetime
    spent_usd: float = 0.0

    def committed_usd(self) -> float:
        return max(self.reserved_usd, self.spent_usd)


class AdmissionState(BaseModel):
    """What a run of the admission workflow holds, and carries into the next."""

    tenant: str
    runs_query: str  # the visibility filter of the tenant's top-level runs
    slots: dict[str, Slot] = Field(default_factory=dict)  # run id → its slot
    day: str = ""  # the UTC day `spent_usd` counts ("": not counted yet)
    spent_usd: float = 0.0  # what the day's runs that hold no slot cost, when last counted
    counted_at: datetime | None = None  # when the runs were last counted (or a count failed)
    continue_after: int = Field(CONTINUE_AFTER, ge=1)


class AdmissionRequest(BaseModel):
    """Admit one run (the caps as the API has them now: 0 is none)."""

    run_id: str = Field(min_length=1, max_length=300)
    reserve_usd: float = Field(0.0, ge=0, allow_inf_nan=False)  # the run's dollar budget (0: it has none)
    max_running: int = Field(0, ge=0)
    max_usd_per_day: float = Field(0.0, ge=0, allow_inf_nan=False)
    # when the API stops waiting (it answers 503): an admission decided later holds no slot for a run nobody starts
    admit_by: datetime | None = None


class Admission(BaseModel):
    """The answer: admitted, or refused for running too many runs or for the day's dollars."""

    admitted: bool
    refused_for: Refusal | None = None
    running: int  # slots held, this run's included when admitted
    spent_usd: float  # what today's runs without a slot cost
    reserved_usd: float  # what the runs holding slots reserved


class ReleaseRequest(BaseModel):
    """Free a run's slot: its start failed."""

    run_id: str


class CensusRequest(BaseModel):
    """Which held runs have ended, and (with `since`) what the tenant's runs since then cost."""

    runs_query: str
    held: list[str]
    since: datetime | None = None  # None: the day's spending is not needed (no dollar cap)


class Census(BaseModel):
    ended: list[str] = Field(default_factory=list)  # held runs that have ended
    running_usd: dict[str, float] = Field(default_factory=dict)  # held runs still running → their cost so far
    missing: list[str] = Field(default_factory=list)  # held runs that do not exist (not started yet, or never)
    spent_usd: float | None = None  # since `since`: the runs holding no slot, and the ended ones

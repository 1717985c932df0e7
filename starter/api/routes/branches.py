"""`POST /v1/runs/{id}/branch`: a new image run from one of the run's iterations (the work:
`starter.api.branches`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from models.api import BranchRequest, RunCreated
from starter.api import branches
from starter.api.routes.creates import IdempotencyKey, accepted
from starter.api.service import Svc, Who

router = APIRouter(prefix="/v1/runs", tags=["runs"])


@router.post("/{run_id}/branch", status_code=202, response_model=RunCreated, summary="Branch an image run")
async def branch_run(
    run_id: str, body: BranchRequest, response: Response, svc: Svc, caller: Who, key: IdempotencyKey = None
) -> RunCreated:
    """A new image run that starts after iteration `from_iteration` of this one, its iterations up to there
    reused (not bought again); a running run branches from its finished iterations."""
    return accepted(response, await branches.start(svc, caller, run_id, body, key))

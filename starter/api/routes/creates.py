"""`POST /v1/images`, `/v1/worlds`, `/v1/memes`, `/v1/worlds/{id}/life`, `/v1/uploads` (the work:
`starter.api.creates`; a life's: `starter.api.life`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response, UploadFile

from models.api import ImageRequest, LifeRequest, MemeRequest, RunCreated, WorldRequest
from models.artifacts import ArtifactRef
from models.pipelines import PIPELINES
from starter.api import creates, life
from starter.api.service import Svc, Who

router = APIRouter(prefix="/v1", tags=["runs"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)]
IMAGE, WORLD, MEME, LIFE = (PIPELINES[name] for name in ("image", "world", "meme", "life"))  # each its own job


def accepted(response: Response, created: RunCreated) -> RunCreated:
    """202, with the run's address in `Location`."""
    response.status_code = 202
    response.headers["Location"] = created.urls.run
    return created


@router.post(f"/{IMAGE.path}", status_code=202, response_model=RunCreated, summary="Start an image loop run")
async def create_image(body: ImageRequest, response: Response, svc: Svc, caller: Who, key: IdempotencyKey = None):
    await creates.check(svc, caller, body)
    job = await creates.image_job(svc, caller, body)
    return accepted(response, await creates.start(svc, caller, IMAGE, job, body, key))


@router.post(f"/{WORLD.path}", status_code=202, response_model=RunCreated, summary="Start a world")
async def create_world(body: WorldRequest, response: Response, svc: Svc, caller: Who, key: IdempotencyKey = None):
    await creates.check(svc, caller, body)
    return accepted(response, await creates.start(svc, caller, WORLD, creates.world_job(svc, body), body, key))


@router.post(f"/{MEME.path}", status_code=202, response_model=RunCreated, summary="Make a meme")
async def create_meme(body: MemeRequest, response: Response, svc: Svc, caller: Who, key: IdempotencyKey = None):
    await creates.check(svc, caller, body)
    return accepted(response, await creates.start(svc, caller, MEME, creates.meme_job(svc, body), body, key))


@router.post(f"/{LIFE.path}", status_code=202, response_model=RunCreated, summary="Let a world's characters live")
async def create_life(
    world_id: str, body: LifeRequest, response: Response, svc: Svc, caller: Who, key: IdempotencyKey = None
):
    """The world's life, tick by tick (`workflows.life`): a run like the others; 404 for another tenant's world."""
    return accepted(response, await life.start(svc, caller, world_id, body, key))


@router.post("/uploads", status_code=201, response_model=ArtifactRef, tags=["artifacts"], summary="Upload a reference")
async def upload(file: UploadFile, svc: Svc, caller: Who) -> Any:
    """A reference image for `references`: stored under its content address, checked as the CLI checks files
    but with the API's lower pixel cap (`upload_max_pixels`: what a thumbnail will decode)."""
    return await creates.upload(svc, caller, file)

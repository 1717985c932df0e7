"""`POST /v1/worlds/{world_id}/life/pause|resume|stop`, `/v1/worlds/{world_id}/events` and
`/v1/worlds/{world_id}/characters/{username}/conversations` (the work: `starter.api.life`; the life is started in
`routes/creates.py`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from models.api import LifeEventRequest
from starter.api import life
from starter.api.conversations import ConversationCreated, NewConversation
from starter.api.service import Svc, Who

router = APIRouter(prefix="/v1/worlds", tags=["runs"])


@router.post("/{world_id}/life/{action}", status_code=202, summary="Pause, resume or stop a world's life")
async def control_life(
    world_id: str, action: Literal["pause", "resume", "stop"], svc: Svc, caller: Who
) -> dict[str, str]:
    return await life.signal(svc, caller, world_id, action)


@router.post("/{world_id}/events", status_code=202, summary="An event that enters every feed at the next tick")
async def inject_event(world_id: str, body: LifeEventRequest, svc: Svc, caller: Who) -> dict[str, str]:
    return await life.inject(svc, caller, world_id, body.text)


@router.post(
    "/{world_id}/characters/{username}/conversations",
    status_code=201,
    response_model=ConversationCreated,
    summary="Talk to a world's character: a conversation in its voice, grounded in its posts and memory",
)
async def talk_to_character(
    world_id: str, username: str, svc: Svc, caller: Who, body: NewConversation | None = None
) -> Any:
    return await life.talk(svc, caller, world_id, username, (body or NewConversation()).config)

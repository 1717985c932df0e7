"""`/v1/conversations`: start one, send a message, read its history (the work: `starter.api.conversations`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header

from models.conversation import History, Reply, UserMessage
from starter.api import conversations
from starter.api.conversations import ConversationCreated, NewConversation
from starter.api.service import Svc, Who

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


@router.post("", status_code=201, response_model=ConversationCreated, summary="Start a conversation")
async def start(svc: Svc, caller: Who, body: NewConversation | None = None) -> Any:
    return await conversations.start(svc, caller, (body or NewConversation()).config)


@router.get("/{conversation_id}", response_model=History, summary="The conversation so far")
async def history(conversation_id: str, svc: Svc, caller: Who) -> Any:
    return await conversations.history(svc, caller, conversation_id)


@router.post(
    "/{conversation_id}/messages",
    response_model=Reply,
    summary="Send a message; the reply as JSON, or streamed with Accept: text/event-stream",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def message(
    conversation_id: str,
    body: UserMessage,
    svc: Svc,
    caller: Who,
    accept: Annotated[str, Header()] = "application/json",
) -> Any:
    return await conversations.message(svc, caller, conversation_id, body.text, "text/event-stream" in accept)

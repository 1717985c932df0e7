"""Conversations (`/v1/conversations`): start one, send a message (the reply as JSON when done, or with
`Accept: text/event-stream` as it is written, from the conversation's Workflow Stream), read its history."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError

from models.conversation import ConversationConfig, ConversationStart, History, PhaseRecord, Reply, UserMessage
from models.conversation_stream import TextDelta
from models.priority import run_priority
from models.settings import WORKFLOW_QUEUE
from starter import run_labels
from starter.api.links import run_urls
from starter.api.problems import ApiProblem
from starter.api.service import Caller, Service, Svc, Who, owned
from starter.chat_stream import CATCH_UP_S, follow_turn, stream_offset
from starter.common import bounded_query
from starter.conversing import ask
from workflows.conversation import ConversationWorkflow

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


class ConversationCreated(BaseModel):
    id: str
    messages: str  # POST here to talk
    temporal_ui: str


class NewConversation(BaseModel):
    config: ConversationConfig = Field(default_factory=ConversationConfig)


async def owned_conversation(svc: Service, caller: Caller, conversation_id: str) -> WorkflowHandle:
    described = await owned(svc, caller, conversation_id, {ConversationWorkflow.__name__}, "conversation")
    handle = svc.client.get_workflow_handle(conversation_id)
    if described.status != WorkflowExecutionStatus.RUNNING:
        raise ApiProblem(409, "conversation ended", f"conversation {conversation_id!r} has ended; start a new one")
    return handle


@router.post("", status_code=201, response_model=ConversationCreated, summary="Start a conversation")
async def start(svc: Svc, caller: Who, body: NewConversation | None = None) -> Any:
    conversation_id = f"{caller.tenant}.conversation-{uuid.uuid4().hex[:16]}"
    config = (body or NewConversation()).config  # retrieval searches the tenant's own knowledge base
    job = ConversationStart(config=config.model_copy(update={"knowledge": caller.tenant if caller.keyed else None}))
    tenant = caller.tenant if caller.keyed else None
    labels = await run_labels.start_options(
        svc.client, svc.settings, "conversation", f"conversation {conversation_id}", job, conversation_id, tenant
    )
    await svc.client.start_workflow(
        ConversationWorkflow.run,
        job,
        id=conversation_id,
        task_queue=WORKFLOW_QUEUE,
        priority=run_priority("conversation", conversation_id, tenant),
        **labels,
    )
    base = run_urls(svc.settings, conversation_id).run.replace("/v1/runs/", "/v1/conversations/")
    return ConversationCreated(
        id=conversation_id, messages=f"{base}/messages", temporal_ui=svc.settings.workflow_ui_link(conversation_id)
    )


@router.get("/{conversation_id}", response_model=History, summary="The conversation so far")
async def history(conversation_id: str, svc: Svc, caller: Who) -> Any:
    handle = await owned_conversation(svc, caller, conversation_id)
    found = await bounded_query(handle, ConversationWorkflow.history, History | None)
    if found is None:
        raise ApiProblem(503, "no worker answered", "no workflow worker answered in time", {"Retry-After": "5"})
    return found


class TurnFeed:
    """The view `follow_turn` writes to: each phase and piece of the answer as an SSE event."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[str] = asyncio.Queue()

    def phase(self, record: PhaseRecord) -> None:
        self.events.put_nowait(sse("phase", record.model_dump(mode="json")))

    def text(self, delta: TextDelta) -> None:
        self.events.put_nowait(sse("text", {"text": delta.text, "attempt": delta.attempt, "take": delta.take}))


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


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
    handle = await owned_conversation(svc, caller, conversation_id)
    text = body.text.strip()
    if "text/event-stream" not in accept or (found := await stream_offset(svc.client, handle)) is None:
        return await _reply(handle, text)
    stream, offset = found
    feed, ask_id = TurnFeed(), f"ask-{uuid.uuid4().hex[:16]}"

    async def events() -> AsyncIterator[str]:
        reply_task = asyncio.ensure_future(_reply(handle, text, ask_id))
        watcher = asyncio.ensure_future(follow_turn(stream, feed, offset, ask=ask_id))  # type: ignore[arg-type]
        try:
            while not reply_task.done() or not feed.events.empty():
                getter = asyncio.ensure_future(feed.events.get())
                await asyncio.wait([getter, reply_task], return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                else:
                    getter.cancel()
            await asyncio.wait([watcher], timeout=CATCH_UP_S)  # the stream may lag the reply: let it show the rest
            while not feed.events.empty():
                yield feed.events.get_nowait()
            if (failed := reply_task.exception()) is not None:
                detail = failed.problem.detail if isinstance(failed, ApiProblem) else type(failed).__name__
                yield sse("error", {"detail": detail})
            else:
                yield sse("reply", reply_task.result().model_dump(mode="json"))
        finally:
            watcher.cancel()

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _reply(handle: WorkflowHandle, text: str, update_id: str | None = None) -> Reply:
    try:
        return await ask(handle, text, update_id=update_id)
    except WorkflowUpdateFailedError as exc:
        raise ApiProblem(422, "message refused", str(exc.cause or exc)) from exc

"""Conversations, for the API (`/v1/conversations`: `routes/conversations.py`) and the Studio: start one, send a
message (the reply as JSON when done, or as Server-Sent Events as it is written, from the conversation's Workflow
Stream), read its history, list them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError

from kit.run_reading import bounded_query
from models.conversation import ConversationConfig, ConversationStart, History, PhaseRecord, Reply, Speaker
from models.conversation_stream import TextDelta
from models.priority import run_priority
from models.settings import WORKFLOW_QUEUE
from models.workflow_interfaces import ConversationWorkflow
from starter import run_labels
from starter.api.caps import tenant_runs
from starter.api.creates import check_models
from starter.api.errors import ApiProblem, Conflict, NoWorker, Refused
from starter.api.service import Caller, Service, owned
from starter.chat_stream import CATCH_UP_S, follow_turn, stream_offset
from starter.conversing import ask


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
        raise Conflict("conversation ended", f"conversation {conversation_id!r} has ended; start a new one")
    return handle


async def start(
    svc: Service, caller: Caller, config: ConversationConfig, speaker: Speaker | None = None
) -> ConversationCreated:
    """A new conversation (its models checked as a run's are); its retrieval searches the caller's own
    knowledge base, or, as a world's character (`speaker`: the caller's own, found by `starter.api.life`), the
    character's memory. A body's own `speaker` is never taken: it could name another tenant's world."""
    check_models(svc, config.models, "body.config.models")
    conversation_id = f"{caller.tenant}.conversation-{uuid.uuid4().hex[:16]}"
    tenant = caller.keyed_tenant
    job = ConversationStart(config=config.model_copy(update={"knowledge": tenant, "speaker": speaker}))
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
    urls = svc.urls
    return ConversationCreated(
        id=conversation_id, messages=urls.messages(conversation_id), temporal_ui=urls.temporal_ui(conversation_id)
    )


async def history(svc: Service, caller: Caller, conversation_id: str) -> History:
    """The conversation so far (503 when no worker answers)."""
    handle = await owned_conversation(svc, caller, conversation_id)
    found = await bounded_query(handle, ConversationWorkflow.history, History | None)
    if found is None:
        raise NoWorker()
    return found


async def listing(svc: Service, caller: Caller, most: int = 50) -> list[WorkflowExecution]:
    """The caller's newest conversations."""
    query = tenant_runs(caller, f'WorkflowType = "{ConversationWorkflow.__name__}"')
    return [run async for run in svc.client.list_workflows(query, limit=most)]


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


async def message(
    svc: Service, caller: Caller, conversation_id: str, text: str, streamed: bool
) -> Reply | StreamingResponse:
    """The reply to a message; `streamed`: its phases and text as Server-Sent Events as they are written
    (the reply alone when the conversation has no stream)."""
    handle = await owned_conversation(svc, caller, conversation_id)
    text = text.strip()
    if not streamed or (found := await stream_offset(svc.client, handle)) is None:
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
        raise Refused("message refused", str(exc.cause or exc)) from exc

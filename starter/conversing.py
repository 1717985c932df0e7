"""Talking to a conversation, the same for the CLI (`atelier chat`) and the API (`/v1/conversations`)."""

from __future__ import annotations

import asyncio
import time

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from models.conversation import Reply
from models.workflow_interfaces import ConversationWorkflow
from workflows.mailbox import HANDING_OVER


async def ask(handle: WorkflowHandle, text: str, patience_s: float = 60.0, update_id: str | None = None) -> Reply:
    """The reply to one message; while the conversation hands over to a fresh run, ask again."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return await handle.execute_update(ConversationWorkflow.ask, text, id=update_id)
        except WorkflowUpdateFailedError as exc:
            if HANDING_OVER not in str(exc.cause) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)

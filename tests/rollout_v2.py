"""Workflow code for the rollout test's v2 workers: each run starts with a timer v1 never had, so replaying a
v1 history with this code is a non-determinism error. A module of its own: the sandbox imports it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

from workflows.conversation import ConversationWorkflow
from workflows.world import WorldWorkflow


@workflow.defn(name="WorldWorkflow")
class WorldWorkflowV2(WorldWorkflow):
    @workflow.run
    async def run(self, raw: dict[str, Any]):  # type: ignore[override]
        await workflow.sleep(timedelta(milliseconds=10))
        return await super().run(raw)


@workflow.defn(name="ConversationWorkflow")
class ConversationWorkflowV2(ConversationWorkflow):
    @workflow.run
    async def run(self, raw: dict[str, Any]):  # type: ignore[override]
        await workflow.sleep(timedelta(milliseconds=10))
        return await super().run(raw)

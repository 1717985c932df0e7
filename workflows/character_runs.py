"""The world's fan-out: one CharacterWorkflow per character, a bounded number at a time, each started with
its share of the world's call and dollar budgets; what it did not spend flows back when it ends."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, is_cancelled_exception
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from models.settings import WORKFLOW_QUEUE
    from models.usage import Usage
    from models.world import CallUsage, CharacterJob, CharacterResult, CharacterSeed
    from workflows import console
    from workflows.character import CharacterWorkflow
    from workflows.failures import failure
    from workflows.world_accounts import Share, WorldAccounts
    from workflows.world_context import WorldContext


class CharacterRuns:
    def __init__(self, ctx: WorldContext, accounts: WorldAccounts) -> None:
        self.ctx = ctx
        self.accounts = accounts
        self.slots = asyncio.Semaphore(ctx.job.max_parallel_characters)  # held by the caller around fund and run

    async def fund(self, seed: CharacterSeed) -> Share | None:
        """The character's share, once the world can fund it; None when the budget lets it not start."""
        # worst case: a model that returns one idea per batch needs a batch per post;
        # whatever the character does not spend flows back to the pool when it finishes
        need = CallUsage(
            llm_calls=1 + 2 * seed.posts_count,
            image_calls=(1 + seed.posts_count) if self.ctx.job.images else 0,
        )
        return await self.accounts.share_for(need)

    async def run(self, seed: CharacterSeed, share: Share) -> CharacterResult:
        """One character to the end with its share, which its result then settles (its failures in it)."""
        job = self.ctx.job
        self.accounts.open(seed.username, share)
        try:
            result = await workflow.execute_child_workflow(
                CharacterWorkflow.run,
                CharacterJob(
                    world_id=self.ctx.world_id,
                    world_text=self.ctx.world_text,
                    visual_style=self.ctx.style,
                    seed=seed,
                    images=job.images,
                    scoring=job.scoring,
                    post_batch_size=job.post_batch_size,
                    allowance=share.calls,
                    cost=share.cost,
                    models=self.accounts.ledger.models,  # what the world's calls name (none before the patch)
                ),
                id=f"{self.ctx.world_id}--{seed.username}",
                task_queue=WORKFLOW_QUEUE,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"@{seed.username} · character of {self.ctx.world_name} · {seed.posts_count} posts",
                search_attributes=console.for_child("character"),
            )
        except ChildWorkflowError as err:
            if is_cancelled_exception(err):
                raise
            result = CharacterResult(username=seed.username, failures=[failure(seed.username, err)])
            result.calls, result.usage = self.accounts.last_report(seed.username) or (share.calls, Usage())
        self.accounts.settle(result)
        return result

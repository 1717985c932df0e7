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
    from models.world import CallUsage, CharacterJob, CharacterResult, CharacterSeed, Failure, PhaseState, WorldStatus
    from workflows import console
    from workflows.character import CharacterWorkflow
    from workflows.failures import failure
    from workflows.world_accounts import WorldAccounts
    from workflows.world_context import WorldContext


class CharacterRuns:
    def __init__(self, ctx: WorldContext, accounts: WorldAccounts, status: WorldStatus) -> None:
        self.ctx = ctx
        self.accounts = accounts
        self.status = status
        self.slots = asyncio.Semaphore(ctx.job.max_parallel_characters)

    async def run(self, seed: CharacterSeed) -> CharacterResult | None:
        """One character to the end (its failures in its result); None when the budget let it not start."""
        job, st = self.ctx.job, self.status
        async with self.slots:
            # worst case: a model that returns one idea per batch needs a batch per post;
            # whatever the character does not spend flows back to the pool when it finishes
            need = CallUsage(
                llm_calls=1 + 2 * seed.posts_count,
                image_calls=(1 + seed.posts_count) if job.images else 0,
            )
            share = await self.accounts.share_for(need)
            if share is None:
                st.failures.append(Failure(step=seed.username, error="budget exhausted: not generated"))
                return None
            for name in ("character_details", "posts") + (("avatars", "post_images") if job.images else ()):
                if st.phases[name] == PhaseState.PENDING:
                    st.phases[name] = PhaseState.IN_PROGRESS
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

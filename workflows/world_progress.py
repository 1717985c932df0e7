"""A character's progress, told to its world in a few batched signals (never waiting for them to land)."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.usage import Usage
    from models.world import CallUsage, ProgressDelta
    from workflows.patches import PROGRESS_PATCH


class WorldProgress:
    """Counts add up here and go out as one signal when the profile is made, per half of the posts, and at
    the end, so the world's history grows with its characters, not their posts (runs started before the
    patch sent one signal per report)."""

    def __init__(self, username: str, posts: int) -> None:
        self.username = username
        self.posts = posts
        self.unsent: dict[str, int] = {}
        self.signals: list[asyncio.Task[None]] = []

    def report(self, calls: CallUsage, usage: Usage, final: bool = False, **counts: int) -> None:
        parent = workflow.info().parent
        if parent is None:
            return
        batched = workflow.patched(PROGRESS_PATCH.id)
        if final and not batched:
            return
        for name, value in counts.items():
            self.unsent[name] = self.unsent.get(name, 0) + value
        if batched:
            half = max(1, (self.posts + 1) // 2)
            due = final or "characters_created" in counts or self.unsent.get("posts_created", 0) >= half
            if not due or not self.unsent:
                return
        delta = ProgressDelta(username=self.username, calls=calls, usage=usage, **self.unsent)
        self.unsent = {}
        handle = workflow.get_external_workflow_handle(parent.workflow_id)
        self.signals.append(asyncio.create_task(handle.signal("progress", delta)))

    async def delivered(self) -> None:
        """Every signal sent has landed."""
        await asyncio.gather(*self.signals)

"""One world's run, built once its job is parsed: the status its query shows, its accounts, and what it has
made so far (the cast in the order the batches made it, the world's images, the characters that ended)."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.artifacts import ArtifactRef
    from models.usage import Metered, V
    from models.world import CharacterResult, PhaseState, ProgressDelta, WorldJob, WorldStatus
    from workflows import console
    from workflows.world_accounts import WorldAccounts


class WorldRun:
    def __init__(self, job: WorldJob, world_id: str) -> None:
        self.accounts = WorldAccounts.for_run(job.budget, job.models)  # call and dollar budgets: own and characters'
        self.status = WorldStatus(world_id=world_id, budget=job.budget)
        self.cast: list[str] = []  # usernames in the order the batches made them
        self.images: dict[str, ArtifactRef | None] = {"background": None, "icon": None}  # made so far
        self.made_by: dict[str, str] = {}  # "world", "background", "icon" → the model that made it
        self.results: list[CharacterResult] = []  # characters ended so far

    def made(self, result: Metered[V], what: str) -> V:
        """What a call of the world's own made, noting the model that made it (`made_by`)."""
        if result.model:
            self.made_by[what] = result.model
        return result.value

    def snapshot(self) -> WorldStatus:
        """The status with calls, usage and spend as of now (a copy: queries change nothing)."""
        return self.status.model_copy(update=self._totals())

    def report(self, delta: ProgressDelta) -> None:
        """A character's progress into the status and the accounts."""
        status = self.status
        status.characters.created += delta.characters_created
        status.posts.planned += delta.posts_planned
        status.posts.created += delta.posts_created
        status.images.planned += delta.images_planned
        status.images.created += delta.images_created
        self.accounts.report(delta)
        self.refresh_calls()

    def mark_phase(self, name: str, state: PhaseState) -> None:
        self.status.phases[name] = state

    def characters_started(self, images: bool) -> None:
        """The phases characters work in are in progress once the first one starts."""
        for name in ("character_details", "posts") + (("avatars", "post_images") if images else ()):
            if self.status.phases[name] == PhaseState.PENDING:
                self.mark_phase(name, PhaseState.IN_PROGRESS)

    def refresh_calls(self) -> None:
        """Totals into the status, and the status into the run's current details."""
        status = self.status
        for name, value in self._totals().items():
            setattr(status, name, value)
        working = [name.replace("_", " ") for name, state in status.phases.items() if state == PhaseState.IN_PROGRESS]
        phases = f" · {', '.join(working)}" if working else ""
        budget = f" of ${status.spend.max_usd:.2f}" if status.spend else ""
        console.show(
            f"**{status.world_name or 'world'}** · {status.state.value}{phases}",
            f"characters {status.characters.created} of {status.characters.planned} · posts {status.posts.created} "
            f"of {status.posts.planned} · images {status.images.created} of {status.images.planned}",
            f"spend ${status.usage.estimated_cost_usd:.4f}{budget}",
            f"{len(status.failures)} failure(s)" if status.failures else "",
        )

    def _totals(self) -> dict[str, Any]:
        calls, usage, spend = self.accounts.totals()
        return {"calls": calls, "usage": usage, "spend": spend, "budget_exhausted": self.accounts.exhausted}

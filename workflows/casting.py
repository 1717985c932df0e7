"""The world's cast: character batches one after another, each seeing the cast so far; characters that
are near-copies of earlier ones (scoring queue) are asked for again, a bounded number of times."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.world import WorldActivities
    from models.scoring import NearDuplicates, NearDuplicatesRequest
    from models.usage import BudgetExhausted
    from models.world import (
        CharacterBatchRequest,
        CharacterSeed,
        CharacterSummary,
        WorldStatus,
        persona_text,
        safe_username,
    )
    from workflows.budget import metered_call
    from workflows.failures import failure, stop_if_cancelled
    from workflows.options import scoring_call, text_call
    from workflows.scoring import ScoringQueue
    from workflows.world_accounts import WorldAccounts
    from workflows.world_context import WorldContext

# Runs from before this patch failed the world when the near-copy check failed (no scoring worker).
NEAR_COPIES_OPTIONAL_PATCH = "near-copy-check-optional"
DUPLICATE_SIMILARITY = 0.9
REGENERATION_ATTEMPTS = 2


class Casting:
    def __init__(self, ctx: WorldContext, accounts: WorldAccounts, status: WorldStatus) -> None:
        self.ctx = ctx
        self.accounts = accounts
        self.status = status
        self.cast: list[CharacterSummary] = []  # everyone made so far, as later batches see them
        self.seeds: list[CharacterSeed] = []
        self.taken: set[str] = set()  # usernames in use
        self.checking = ctx.job.scoring  # near-copies checked on the scoring queue (off once it failed)
        self.scoring = ScoringQueue()

    async def batch(self, index: int) -> list[CharacterSeed] | None:
        """The next batch's new characters ([] when the batch failed, recorded); None when the budget
        allows no more."""
        job = self.ctx.job
        count = min(job.character_batch_size, job.characters - len(self.cast))
        if count <= 0:
            return None
        kept: list[CharacterSeed] = []
        wanted = count
        for attempt in range(REGENERATION_ATTEMPTS + 1):
            if not self.accounts.count("text"):
                break
            try:
                batch = await metered_call(
                    self.accounts.ledger,
                    WorldActivities.character_batch,
                    CharacterBatchRequest(
                        world_id=self.ctx.world_id,
                        world_text=self.ctx.world_text,
                        batch_index=index,
                        count=wanted,
                        max_posts=job.posts_per_character,
                        previous=self.cast + [CharacterSummary.model_validate(s.model_dump()) for s in kept],
                    ),
                    text_call(f"world · character batch {index + 1}" + (" · again" if attempt else "")),
                )
            except BudgetExhausted:
                self.accounts.count("text", -1)  # not made
                break
            except ActivityError as err:  # the batch is lost, near-copy regenerations included
                stop_if_cancelled(err)
                self.status.failures.append(failure(f"characters/batch {index + 1}", err))
                return []
            new = batch.characters[:wanted]
            copies = await self._near_copies(kept, new) if attempt < REGENERATION_ATTEMPTS else set()
            kept += [seed for i, seed in enumerate(new) if i not in copies]
            wanted = len(copies)
            self.status.duplicates_regenerated += wanted
            if not wanted:
                break
        if not kept and self.accounts.exhausted:
            return None
        fresh = [
            seed.model_copy(
                update={
                    "username": safe_username(seed.username, self.taken),
                    "posts_count": min(seed.posts_count, job.posts_per_character),
                }
            )
            for seed in kept
        ]
        self.seeds += fresh
        self.cast += [CharacterSummary.model_validate(seed.model_dump()) for seed in fresh]
        return fresh

    async def _near_copies(self, kept: list[CharacterSeed], new: list[CharacterSeed]) -> set[int]:
        """Indexes of `new` characters that are near-copies of an earlier one (scoring queue)."""
        earlier = self.seeds + kept
        if not self.checking or len(earlier) + len(new) < 2:
            return set()
        texts = [persona_text(s) for s in earlier + new]
        try:
            found = await self.scoring.execute(
                "near_duplicates",
                NearDuplicatesRequest(texts=texts, threshold=DUPLICATE_SIMILARITY),
                result_type=NearDuplicates,
                **scoring_call(f"world · near-duplicate check of {len(new)} new"),
            )
        except ActivityError as err:
            stop_if_cancelled(err)
            if not workflow.patched(NEAR_COPIES_OPTIONAL_PATCH):
                raise
            # scoring is optional: the characters are kept unchecked, and the world says so
            self.status.failures.append(failure("characters/near-copy check", err))
            self.checking = False  # no point asking again for every batch
            return set()
        return {pair.second - len(earlier) for pair in found.pairs if pair.second >= len(earlier)}

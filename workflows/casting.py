"""The world's cast: character batches one after another, each seeing the cast so far; characters that
are near-copies of earlier ones (scoring queue) are asked for again, a bounded number of times."""

from __future__ import annotations

from dataclasses import dataclass, field

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
        Failure,
        persona_text,
        safe_username,
    )
    from workflows.budget import metered_call
    from workflows.failures import failure, stop_if_cancelled
    from workflows.options import scoring_call, text_call
    from workflows.patches import NEAR_COPIES_OPTIONAL_PATCH
    from workflows.scoring import ScoringQueue
    from workflows.world_accounts import WorldAccounts
    from workflows.world_context import WorldContext

DUPLICATE_SIMILARITY = 0.9
REGENERATION_ATTEMPTS = 2


@dataclass
class CastBatch:
    """What one character batch made: its new characters, what failed on the way, and how many near-copies
    it asked for again; `last` when the budget (or the cast's size) allows no more batches."""

    seeds: list[CharacterSeed] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    regenerated: int = 0
    last: bool = False


class Casting:
    def __init__(self, ctx: WorldContext, accounts: WorldAccounts) -> None:
        self.ctx = ctx
        self.accounts = accounts
        self.cast: list[CharacterSummary] = []  # everyone made so far, as later batches see them
        self.seeds: list[CharacterSeed] = []
        self.taken: set[str] = set()  # usernames in use
        self.checking = ctx.job.scoring  # near-copies checked on the scoring queue (off once it failed)
        self.scoring = ScoringQueue()

    async def batch(self, index: int) -> CastBatch:
        """The next batch: no characters when it failed (its failure says why) or the budget refused it."""
        job = self.ctx.job
        made = CastBatch()
        wanted = min(job.character_batch_size, job.characters - len(self.cast))
        if wanted <= 0:
            made.last = True
            return made
        kept: list[CharacterSeed] = []
        for attempt in range(REGENERATION_ATTEMPTS + 1):
            if not self.accounts.count("text"):
                break
            try:
                new = await self._ask(index, wanted, kept, again=attempt > 0)
            except BudgetExhausted:
                self.accounts.count("text", -1)  # not made
                break
            except ActivityError as err:  # the batch is lost, near-copy regenerations included
                stop_if_cancelled(err)
                made.failures.append(failure(f"characters/batch {index + 1}", err))
                return made
            copies = await self._near_copies(kept, new) if attempt < REGENERATION_ATTEMPTS else set()
            if isinstance(copies, Failure):  # scoring is optional: kept unchecked, and the world says so
                made.failures.append(copies)
                copies = set()
            kept += [seed for i, seed in enumerate(new) if i not in copies]
            wanted = len(copies)
            made.regenerated += wanted
            if not wanted:
                break
        made.last = not kept and self.accounts.exhausted
        made.seeds = self._admit(kept)
        return made

    async def _ask(self, index: int, wanted: int, kept: list[CharacterSeed], again: bool) -> list[CharacterSeed]:
        """One character batch call: `wanted` new characters that know the cast so far and those `kept`."""
        batch = await metered_call(
            self.accounts.ledger,
            WorldActivities.character_batch,
            CharacterBatchRequest(
                world_id=self.ctx.world_id,
                world_text=self.ctx.world_text,
                batch_index=index,
                count=wanted,
                max_posts=self.ctx.job.posts_per_character,
                previous=self.cast + [CharacterSummary.model_validate(s.model_dump()) for s in kept],
            ),
            text_call(f"world · character batch {index + 1}" + (" · again" if again else "")),
        )
        return batch.characters[:wanted]

    def _admit(self, kept: list[CharacterSeed]) -> list[CharacterSeed]:
        """The batch's characters join the cast, with usernames of their own and posts within the job's."""
        fresh = [
            seed.model_copy(
                update={
                    "username": safe_username(seed.username, self.taken),
                    "posts_count": min(seed.posts_count, self.ctx.job.posts_per_character),
                }
            )
            for seed in kept
        ]
        self.seeds += fresh
        self.cast += [CharacterSummary.model_validate(seed.model_dump()) for seed in fresh]
        return fresh

    async def _near_copies(self, kept: list[CharacterSeed], new: list[CharacterSeed]) -> set[int] | Failure:
        """Indexes of `new` characters that are near-copies of an earlier one (scoring queue); the failure
        when the check failed (then later batches are not checked)."""
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
            if not workflow.patched(NEAR_COPIES_OPTIONAL_PATCH.id):
                raise
            self.checking = False  # no point asking again for every batch
            return failure("characters/near-copy check", err)
        return {pair.second - len(earlier) for pair in found.pairs if pair.second >= len(earlier)}

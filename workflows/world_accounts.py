"""A world's accounts: its call and dollar budgets, shared between its own calls and its characters'
shares (the words are defined in `workflows.budget`).

One object answers "what may the next step spend" and "what has been spent so far". The world's own
calls are counted and booked; a running character holds an open share and reports what it has used so
far, which counts until its result settles the share. Deterministic: it lives in the world's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.catalog import ModelChoice
    from models.usage import CallKind, CostLimit, Spend, Usage
    from models.world import Budget, CallUsage, CharacterResult, ProgressDelta
    from workflows.budget import Ledger


@dataclass
class Share:
    """What a character is started with: its calls, and its part of the dollar budget (None: no dollar budget)."""

    calls: CallUsage
    cost: CostLimit | None


@dataclass
class Running:
    """A running character's open share and its last report."""

    calls: CallUsage
    usd: float
    last: ProgressDelta | None = None


@dataclass
class WorldAccounts:
    budget: Budget = field(default_factory=Budget)
    settled_calls: CallUsage = field(default_factory=CallUsage)  # own calls + finished characters'
    ledger: Ledger = field(default_factory=Ledger)  # tokens, images, dollars: own calls + finished characters'
    running: dict[str, Running] = field(default_factory=dict)
    out_of_calls: bool = False  # the call budget refused a call of the world's, or a character's start
    shares_exhausted: bool = False  # a character ran out of its share

    @property
    def exhausted(self) -> bool:
        """Whether a budget has refused something: the world is incomplete."""
        return self.out_of_calls or self.shares_exhausted or self.ledger.out_of_dollars

    @classmethod
    def for_run(cls, budget: Budget, models: ModelChoice | None = None) -> WorldAccounts:
        """The world's accounts; its calls (and its characters', `CharacterJob.models`) name `models`."""
        return cls(budget=budget, ledger=Ledger.for_run(budget.cost, models))

    # --- what may be spent -------------------------------------------------------------------------
    def free_calls(self) -> CallUsage:
        held = self.settled_calls
        for character in self.running.values():
            held = held.plus(character.calls)
        return CallUsage(
            llm_calls=max(0, self.budget.llm_calls - held.llm_calls),
            image_calls=max(0, self.budget.image_calls - held.image_calls),
        )

    def count(self, kind: CallKind, count: int = 1) -> bool:
        """Count the world's own next calls against the call budget if it covers them (their dollars are
        reserved per call, by `metered_call`); a negative count gives back calls that were not made."""
        calls = CallUsage.one(kind, count)
        if not self.free_calls().covers(calls):
            self.out_of_calls = True
            return False
        self.settled_calls = self.settled_calls.plus(calls)
        return True

    def worst_case(self, need: CallUsage) -> float:
        """What a character needing `need` may cost at worst (0 without a dollar budget)."""
        limit = self.budget.cost
        if limit is None:
            return 0.0
        return need.llm_calls * limit.text_call_usd + need.image_calls * limit.image_call_usd

    def can_fund(self, need: CallUsage) -> bool:
        """Whether a character's worst case is free now, or nothing in flight can free more (then it gets
        what is left): a character started on less would stop short while others' unspent shares flow back."""
        free = self.ledger.free_usd()
        return free is None or free + 1e-9 >= self.worst_case(need) or not self.ledger.in_flight()

    def share(self, need: CallUsage) -> Share:
        """What a character needing `need` at worst may have now: calls, and its part of the dollar budget."""
        free = self.free_calls()
        calls = CallUsage(
            llm_calls=min(need.llm_calls, free.llm_calls), image_calls=min(need.image_calls, free.image_calls)
        )
        limit = self.budget.cost
        if limit is None:
            return Share(calls, None)
        usd = min(self.worst_case(need), self.ledger.free_usd() or 0.0)
        return Share(calls, limit.model_copy(update={"max_usd": round(usd, 6)}))

    async def share_for(self, need: CallUsage) -> Share | None:
        """A character's share once it can be funded (started on less, it would stop short: wait for others'
        shares to come back, others waiting may go first); None, and the world exhausted, when what is left
        cannot start it."""
        while self.ledger.settling and not self.can_fund(need):
            await workflow.wait_condition(lambda: self.can_fund(need))
        share = self.share(need)
        if share.calls.llm_calls == 0:
            self.out_of_calls = True
            return None
        if share.cost is not None and not self.ledger.afford_share(share.cost.max_usd):
            return None
        return share

    # --- characters --------------------------------------------------------------------------------
    def open(self, username: str, share: Share) -> None:
        """A character starts with its share; the world's own calls cannot use it meanwhile."""
        self.running[username] = Running(calls=share.calls, usd=share.cost.max_usd if share.cost else 0.0)
        self._commit()

    def report(self, delta: ProgressDelta) -> None:
        if (character := self.running.get(delta.username)) is not None:
            character.last = delta

    def last_report(self, username: str) -> tuple[CallUsage, Usage] | None:
        character = self.running.get(username)
        if character is None or character.last is None:
            return None
        return character.last.calls, character.last.usage

    def settle(self, result: CharacterResult) -> None:
        """A character ended: what it really used replaces its share."""
        self.shares_exhausted |= result.budget_exhausted
        self.running.pop(result.username, None)
        self._commit()
        self.settled_calls = self.settled_calls.plus(result.calls)
        self.ledger.book(result.usage)

    def _commit(self) -> None:
        self.ledger.committed_usd = sum(c.usd for c in self.running.values())

    # --- what was spent ----------------------------------------------------------------------------
    def totals(self) -> tuple[CallUsage, Usage, Spend | None]:
        """Calls, usage and spend so far: settled, plus running characters' last reports."""
        calls, usage = self.settled_calls, self.ledger.usage
        for character in self.running.values():
            if character.last is not None:
                calls, usage = calls.plus(character.last.calls), usage.plus(character.last.usage)
        spend = None
        if (limit := self.ledger.limit) is not None:
            spend = Spend(
                max_usd=limit.max_usd,
                spent_usd=usage.estimated_cost_usd,
                reserved_usd=round(self.ledger.reserved_usd + self.ledger.committed_usd, 6),
                exhausted=self.exhausted,
            )
        return calls, usage, spend

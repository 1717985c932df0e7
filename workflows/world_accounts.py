"""A world's accounts: its call budget and dollar budget, shared between its own calls and its characters.

One object answers "what may the next step spend" and "what has been spent so far". The world's own
calls and finished characters are settled; a running character holds an allowance (calls and dollars)
and reports what it has used so far, which counts until its result settles it.
Pure, deterministic Python: it lives in the world workflow's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.usage import CostLimit, Ledger, Spend, Usage
from models.world import Budget, CallUsage, ProgressDelta


@dataclass
class Running:
    """A running character's allowance and its last report."""

    calls: CallUsage
    usd: float
    last: ProgressDelta | None = None


@dataclass
class WorldAccounts:
    budget: Budget = field(default_factory=Budget)
    settled_calls: CallUsage = field(default_factory=CallUsage)  # own calls + finished characters'
    ledger: Ledger = field(default_factory=Ledger)  # tokens, images, dollars: own calls + finished characters'
    running: dict[str, Running] = field(default_factory=dict)
    short: bool = False  # the call budget refused a call, or a character ran out of its share

    @property
    def exhausted(self) -> bool:
        """Whether a budget has refused something: the world is incomplete."""
        return self.short or self.ledger.exhausted

    @classmethod
    def for_budget(cls, budget: Budget, settling: bool) -> WorldAccounts:
        return cls(budget=budget, ledger=Ledger(budget.cost, settling))

    # --- what may be spent -------------------------------------------------------------------------
    def free_calls(self) -> CallUsage:
        held = self.settled_calls
        for character in self.running.values():
            held = held.plus(character.calls)
        return CallUsage(
            llm_calls=max(0, self.budget.llm_calls - held.llm_calls),
            image_calls=max(0, self.budget.image_calls - held.image_calls),
        )

    def book(self, kind: str, count: int = 1) -> bool:
        """Count the world's own next calls against the call budget if it covers them (their dollars are
        reserved per call, by `metered_call`); a negative count gives back calls that were not made."""
        free = self.free_calls()
        calls = CallUsage.one(kind, count)
        if free.llm_calls < calls.llm_calls or free.image_calls < calls.image_calls:
            self.short = True
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

    def allowance(self, need: CallUsage) -> tuple[CallUsage, CostLimit | None]:
        """What a character needing `need` at worst may have now: calls, and its share of the dollar budget."""
        free = self.free_calls()
        calls = CallUsage(
            llm_calls=min(need.llm_calls, free.llm_calls), image_calls=min(need.image_calls, free.image_calls)
        )
        limit = self.budget.cost
        if limit is None:
            return calls, None
        share = min(self.worst_case(need), self.ledger.free_usd() or 0.0)
        return calls, limit.model_copy(update={"max_usd": round(share, 6)})

    # --- characters --------------------------------------------------------------------------------
    def open(self, username: str, calls: CallUsage, cost: CostLimit | None) -> None:
        """A character starts with its allowance; the world's own calls cannot use it meanwhile."""
        self.running[username] = Running(calls=calls, usd=cost.max_usd if cost else 0.0)
        self._commit()

    def report(self, delta: ProgressDelta) -> None:
        if (character := self.running.get(delta.username)) is not None:
            character.last = delta

    def last_report(self, username: str) -> tuple[CallUsage, Usage] | None:
        character = self.running.get(username)
        if character is None or character.last is None:
            return None
        return character.last.calls, character.last.usage

    def settle(self, username: str, calls: CallUsage, usage: Usage, exhausted: bool) -> None:
        """A character ended: what it really used replaces its allowance."""
        self.short = self.short or exhausted
        self.running.pop(username, None)
        self._commit()
        self.settled_calls = self.settled_calls.plus(calls)
        self.ledger.add(usage)

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

"""One life's run, as the workflow keeps it between ticks: its status, its ledger and call counts against the life's
budget and each tick's, whether it is paused or stopped, the events waiting for the next tick, and how the tick's
active characters are drawn. Pure, deterministic Python that lives in workflow state (small: no posts)."""

from __future__ import annotations

import math

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.artifacts import ArtifactRef
    from models.life import ActionKind, Carried, LifeEvent, LifeJob, LifeRunState, LifeStatus
    from models.world import CallUsage
    from workflows import console
    from workflows.budget import Ledger


class LifeRun:
    def __init__(self, job: LifeJob, life_id: str) -> None:
        self.job = job
        carried = job.carried
        self.status = carried.status if carried else LifeStatus(life_id=life_id, world_id=job.world_id)
        self.status.ticks = job.ticks
        self.ledger = Ledger.for_run(job.budget.cost, job.models)
        self.ledger.book(self.status.usage)  # what earlier runs of the life spent
        self.cast: ArtifactRef | None = carried.cast if carried else None
        self.members: list[tuple[str, float]] = carried.members if carried else []
        self.pending: list[LifeEvent] = carried.pending if carried else []  # enter the next tick's feeds
        self.paused = carried.paused if carried else False
        self.stopped = False
        self.ticking = False  # a tick is under way: a pause holds once it ends
        self.first_tick = self.status.tick  # of this run (continue-as-new counts from here)

    # --- what the signals do (each idempotent) --------------------------------------------------------
    def pause(self) -> None:
        """Paused once no tick is under way: at once between ticks, else when the tick ends (`hold`)."""
        if self.status.state in (LifeRunState.RUNNING, LifeRunState.PAUSED):
            self.paused = True
            self.status.note = "pausing after this tick" if self.ticking else "paused"
            if not self.ticking:
                self.status.state = LifeRunState.PAUSED
            self.show()

    def hold(self) -> None:
        """Between ticks: a pause asked for during the tick holds now."""
        if self.paused and self.status.state == LifeRunState.RUNNING:
            self.status.state, self.status.note = LifeRunState.PAUSED, "paused"
            self.show()

    def resume(self) -> None:
        if self.status.state in (LifeRunState.PAUSED, LifeRunState.BUDGET_EXHAUSTED):
            self.paused = False
            self.status.state, self.status.note = LifeRunState.RUNNING, ""
            self.show()

    def stop(self) -> None:
        if self.status.state not in (LifeRunState.STOPPED, LifeRunState.COMPLETED):
            self.stopped = True
            self.status.state, self.status.note = LifeRunState.STOPPED, "stopped"
            self.show()

    def inject(self, text: str) -> None:
        text = " ".join(text.split())[:500]
        if not text or self.status.state in (LifeRunState.STOPPED, LifeRunState.COMPLETED):
            return
        self.status.events += 1
        self.pending.append(LifeEvent(id=f"event-{self.status.events}", text=text, tick=self.status.tick + 1))

    def may_go_on(self) -> bool:
        return self.stopped or not self.paused

    # --- the tick -------------------------------------------------------------------------------------
    def draw(self) -> list[str]:
        """The tick's active characters: `active_share` of the cast (at least one), drawn without replacement,
        each weighted by its activity (Efraimidis–Spirakis keys on the workflow's seeded random)."""
        count = max(1, round(self.job.active_share * len(self.members)))
        rng = workflow.random()
        keyed = sorted(((rng.random() ** (1 / weight), name) for name, weight in self.members), reverse=True)
        chosen = {name for _, name in keyed[:count]}
        return [name for name, _ in self.members if name in chosen]  # in the cast's order

    def calls_left(self) -> int:
        """The life's model calls not yet made."""
        return max(0, self.job.budget.llm_calls - self.status.calls.llm_calls)

    def calls_allowed(self) -> int:
        """How many decision calls the tick may make: what is left of the life's calls, within the tick's calls
        and, with a dollar budget, the tick's dollars at each call's quote."""
        allowed = self.calls_left()
        tick = self.job.tick_budget
        if tick.llm_calls is not None:
            allowed = min(allowed, tick.llm_calls)
        if tick.max_usd is not None and self.ledger.limit is not None and self.ledger.limit.text_call_usd > 0:
            allowed = min(allowed, math.floor(tick.max_usd / self.ledger.limit.text_call_usd + 1e-9))
        return allowed

    def count_call(self) -> None:
        self.status.calls = self.status.calls.plus(CallUsage.one("text"))

    def images_left(self) -> int:
        """The life's image calls not yet made (post pictures)."""
        return max(0, self.job.budget.image_calls - self.status.calls.image_calls)

    def count_image(self) -> None:
        self.status.calls = self.status.calls.plus(CallUsage.one("image"))

    def ticked(self, tick: int, counts: dict[str, int], posts: int, state: ArtifactRef) -> None:
        status = self.status
        status.tick, status.posts, status.state_ref = tick, posts, state
        for kind, count in counts.items():
            status.actions[ActionKind(kind)] = status.actions.get(ActionKind(kind), 0) + count
        self.refresh()

    def exhausted(self, why: str) -> None:
        """The life's budget refused a call: it pauses, and says so."""
        self.paused = True
        status = self.status
        status.budget_exhausted = True
        status.state, status.note = LifeRunState.BUDGET_EXHAUSTED, why
        self.show()

    def refresh(self) -> None:
        self.status.usage = self.ledger.usage
        self.status.spend = self.ledger.statement()
        self.show()

    def snapshot(self) -> LifeStatus:
        return self.status.model_copy(update={"usage": self.ledger.usage, "spend": self.ledger.statement()})

    def carried(self) -> Carried:
        assert self.cast is not None
        self.refresh()
        return Carried(
            status=self.status, cast=self.cast, members=self.members, pending=self.pending, paused=self.paused
        )

    def show(self) -> None:
        status = self.status
        acted = " · ".join(f"{kind} {n}" for kind, n in status.actions.items() if n)
        console.show(
            f"**life of {status.world_id}** · {status.state.value} · tick {status.tick} of {status.ticks}",
            acted,
            f"posts {status.posts} · calls {status.calls.llm_calls} · spend ${status.usage.estimated_cost_usd:.4f}",
            status.note,
        )

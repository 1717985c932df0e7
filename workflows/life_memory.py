"""A life's memory, as its workflow runs it each tick: gather every active character's memory search (storage), rank
it on the scoring queue as a conversation's retrieval does (MiniLM), or by shared words when no scoring worker polls,
and, every `reflect_every` ticks, let the tick's characters write a reflection (batched like decisions: one paid,
budgeted structured call per batch). Deterministic: it only schedules activities."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.life_memory import LifeMemoryActivities
    from models.artifacts import ArtifactRef
    from models.conversation import RankPassagesRequest
    from models.life import Memory
    from models.life_memory import GatherRequest, Reflected, ReflectRequest
    from models.usage import BudgetExhausted
    from workflows.budget import metered
    from workflows.failures import stop_if_cancelled
    from workflows.life_run import LifeRun
    from workflows.options import scoring_call, storage_call, text_call
    from workflows.scoring import ScoringQueue

RECALL_WAIT = timedelta(minutes=2)  # a busy scoring worker, waited for; then the memories are ranked by their words


class Remembering:
    """One run's memory steps (create one per workflow run: it holds the run's view of the scoring queue)."""

    def __init__(self) -> None:
        self.scoring = ScoringQueue()

    async def recall(self, life: LifeRun, tick: int, active: list[str], feeds: ArtifactRef) -> Memory:
        """The tick's memories: what each active character recalls of its past, and its latest reflection."""
        status = life.status
        assert life.cast is not None and status.state_ref is not None
        gathered = await workflow.execute_activity_method(
            LifeMemoryActivities.gather_memories,
            GatherRequest(
                life_id=status.life_id, tick=tick, cast=life.cast, state=status.state_ref, feeds=feeds, active=active
            ),
            **storage_call(f"life · memories of tick {tick}"),
        )
        request = RankPassagesRequest(searches=gathered.searches, k=life.job.memory_k, key=gathered.ranked_key)
        summary = f"life · recalling, tick {tick} ({len(active)} characters)"
        try:
            recalled = await self.scoring.execute(
                "rank_passages", request, result_type=ArtifactRef, **scoring_call(summary, RECALL_WAIT)
            )
        except ActivityError as err:  # no scoring worker, or it kept failing: by shared words instead
            stop_if_cancelled(err)
            recalled = await workflow.execute_activity_method(
                LifeMemoryActivities.rank_passages_lexically, request, **storage_call(f"{summary} by shared words")
            )
        return Memory(reflections=gathered.reflections, recalled=recalled)

    async def reflect(self, life: LifeRun, tick: int, active: list[str], memory: Memory, room: int) -> None:
        """On every `reflect_every`-th tick, the tick's characters reflect, a batch per call, within `room` calls
        (what the tick's and the life's budgets leave after the decisions); batches past it do not reflect."""
        job, status = life.job, life.status
        if not job.reflect_every or tick % job.reflect_every or life.cast is None or status.state_ref is None:
            return
        batches = [active[i : i + job.batch_size] for i in range(0, len(active), job.batch_size)]
        calls = []
        for number, names in enumerate(batches[: max(0, room)]):
            life.count_call()
            request = ReflectRequest(
                life_id=status.life_id,
                tick=tick,
                batch=number,
                usernames=names,
                cast=life.cast,
                state=status.state_ref,
                recalled=memory.recalled,
            )
            calls.append(self._reflect(life, request))
        status.reflections += sum(await asyncio.gather(*calls))
        life.refresh()

    async def _reflect(self, life: LifeRun, request: ReflectRequest) -> int:
        """One batch's reflections, how many were written (0: the budget refused it, or it failed for good)."""
        summary = f"life · tick {request.tick} · reflections of {len(request.usernames)} characters"
        try:
            reflected: Reflected = (
                await metered(life.ledger, LifeMemoryActivities.reflect, request, text_call(summary))
            ).value
        except BudgetExhausted:
            return 0
        except ActivityError as err:
            stop_if_cancelled(err)
            life.status.note = f"tick {request.tick} reflections {request.batch} failed: {err.cause or err}"
            return 0
        return reflected.count

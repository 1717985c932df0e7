"""One PostChain turn: Action → Experience → Intention → Observation → Understanding (→ Experience again,
bounded) → Yield → archive. A phase that keeps failing degrades the turn instead of failing it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.conversation import ConversationActivities
    from models.conversation import (
        ActionOutput,
        ActionRequest,
        ConversationConfig,
        ConversationState,
        IntentionOutput,
        IntentionRequest,
        ObservationOutput,
        ObservationRequest,
        Passage,
        Phase,
        PhaseRecord,
        Progress,
        Reply,
        Retrieved,
        RetrieveRequest,
        TurnRecord,
        UnderstandingOutput,
        UnderstandingRequest,
        YieldOutput,
        YieldRequest,
        transcript_lines,
    )
    from models.usage import Metered, ModelRequest
    from workflows.budget import Ledger, booked
    from workflows.failures import failure_cause, stop_if_cancelled
    from workflows.options import scoring_call, storage_call, text_call
    from workflows.scoring import ScoringQueue
    from workflows.turn_stream import TurnStream

R = TypeVar("R")
T = TypeVar("T")
PHASE_ATTEMPTS = 3  # then the phase degrades


def phase_call(summary: str) -> dict:
    return text_call(summary, attempts=PHASE_ATTEMPTS).options


def experience_call(summary: str, wait_s: int) -> dict:
    """The scoring queue, with `wait_s` for the search, queued behind a busy scoring worker and run."""
    return scoring_call(summary, timedelta(seconds=wait_s)) | {
        "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=PHASE_ATTEMPTS),
    }


def step(turn: Turn, phase: Phase) -> str:
    """A phase's summary in the UI, e.g. `turn 5 · experience`."""
    return f"turn {turn.progress.turn} · {phase.value.lower()}"


def elapsed_ms(started: datetime) -> int:
    return int((workflow.now() - started).total_seconds() * 1000)


def describe_retrieval(found: Retrieved) -> str:
    best = ", ".join(f"{p.ref} ({p.score:.2f})" for p in found.passages[:3]) or "nothing relevant"
    return f"searched {found.searched_turns} turns and {found.searched_chunks} passages: {best}"


class Turn:
    """One message's trip through the chain: its phase records (also on the stream), what degraded, and the
    model that answered its latest phase (the conversation's text model: the reply's)."""

    def __init__(self, progress: Progress, stream: TurnStream) -> None:
        self.progress = progress
        self.stream = stream
        self.degraded: list[str] = []
        self.model: str | None = None

    def log_phase(self, phase: Phase, summary: str, ms: int, degraded: str | None = None) -> None:
        record = PhaseRecord(phase=phase, summary=summary[:300], ms=ms, degraded=degraded)
        self.progress.phases.append(record)
        self.stream.phase(self.progress.turn or 0, record)
        if degraded:
            self.degraded.append(degraded)


class PostChain:
    """Runs a conversation's turns; `progress` is the turn in progress, for the conversation's query."""

    def __init__(self, config: ConversationConfig, ledger: Ledger, stream: TurnStream) -> None:
        self.config = config
        self.ledger = ledger
        self.stream = stream
        self.scoring = ScoringQueue()
        self.progress = Progress()

    async def _run(
        self, turn: Turn, phase: Phase, call: Awaitable[T], summary: Callable[[T], str], degraded: str
    ) -> T | None:
        """Await one phase's activity and record it; when it keeps failing, record the degradation, return None."""
        started = workflow.now()
        try:
            result = await call
        except ActivityError as err:
            stop_if_cancelled(err)
            cause = failure_cause(err)
            turn.log_phase(
                phase, f"failed: {cause}", elapsed_ms(started), f"{degraded} ({phase.value} failed: {cause})"
            )
            return None
        turn.log_phase(phase, summary(result), elapsed_ms(started))
        return result

    async def _run_phase(
        self,
        turn: Turn,
        phase: Phase,
        activity: Callable[[Any, Any], Awaitable[Metered[R]]],
        request: ModelRequest,
        summary: Callable[[R], str],
        degraded: str,
    ) -> R | None:
        """A model phase on the provider queue, naming the conversation's model; its usage, every attempt's (a
        phase that failed too), goes into the ledger."""
        named = self.ledger.naming(request)
        call = booked(self.ledger, workflow.execute_activity_method(activity, named, **phase_call(step(turn, phase))))
        metered = await self._run(turn, phase, call, lambda m: summary(m.value), degraded)
        if metered is None:
            return None
        turn.model = metered.model or turn.model
        return self.ledger.paid(metered)

    async def _experience(self, turn: Turn, st: ConversationState, query: str) -> list[Passage] | None:
        request = RetrieveRequest(
            conversation_id=st.conversation_id,
            query=query,
            before_turn=st.turns_total + 1,
            k=self.config.top_k,
            knowledge=self.config.knowledge,
            speaker=self.config.speaker,
        )
        call = self.scoring.execute(
            "retrieve_passages",
            request,
            result_type=Retrieved,
            **experience_call(step(turn, Phase.EXPERIENCE), self.config.retrieval_wait_s),
        )
        found = await self._run(
            turn, Phase.EXPERIENCE, call, describe_retrieval, "answered without retrieval: experience unavailable"
        )
        return found.passages if found else None

    async def run(self, st: ConversationState, text: str, queued: int, ask: str | None = None) -> Reply:
        """Answer one message (`ask`: the id of the update waiting for it): every phase in order, degrading
        instead of failing; streamed when the run streams."""
        number = st.turns_total + 1
        began = workflow.now()
        turn = Turn(Progress(turn=number, user=text, queued=queued, turns_total=st.turns_total), self.stream)
        self.progress = turn.progress
        streamed = number if self.stream.started(number, ask, text, self.config.stream) else None
        action: ActionOutput | None = await self._run_phase(
            turn,
            Phase.ACTION,
            ConversationActivities.action,
            ActionRequest(
                user=text, recent=transcript_lines(st.recent[-3:]), stream_turn=streamed, speaker=self.config.speaker
            ),
            lambda out: out.response,
            "no first response",
        )
        draft = action.response if action else ""
        passages = await self._experience(turn, st, text)
        intent = await self._intention(turn, text, draft)
        concepts = await self._observation(turn, st, text, draft, intent)
        found = await self._understanding(turn, st, text, intent, concepts, passages)
        answer, citations = await self._yield(turn, text, draft, intent, found, passages is not None, streamed)
        record = TurnRecord(
            number=number,
            user=text,
            reply=answer,
            intent=intent,
            citations=citations,
            phases=turn.progress.phases,
            degraded=turn.degraded,
            started_at=began,
            finished_at=workflow.now(),
            model=turn.model,
        )
        record = await self._archive(turn, record)
        st.add(record, self.config.keep_recent)
        self.progress = Progress(turns_total=st.turns_total, queued=queued)
        reply = Reply(
            turn=number,
            text=record.reply,
            citations=citations,
            degraded=turn.degraded,
            phases=record.phases,
            model=record.model,
        )
        self.stream.done(number, reply)
        return reply

    async def _intention(self, turn: Turn, text: str, draft: str) -> str:
        """What the user wants ("unknown" when the phase degraded)."""
        intent: IntentionOutput | None = await self._run_phase(
            turn,
            Phase.INTENTION,
            ConversationActivities.intention,
            IntentionRequest(user=text, draft=draft),
            lambda out: out.intent,
            "intent unknown",
        )
        return intent.intent if intent else "unknown"

    async def _observation(self, turn: Turn, st: ConversationState, text: str, draft: str, intent: str) -> list[str]:
        """The concepts the message touches; the links seen go into the conversation's observations."""
        seen: ObservationOutput | None = await self._run_phase(
            turn,
            Phase.OBSERVATION,
            ConversationActivities.observation,
            ObservationRequest(user=text, draft=draft, intent=intent),
            lambda out: f"concepts: {', '.join(out.concepts) or 'none'}; {len(out.links)} links",
            "nothing observed",
        )
        if seen:
            st.observations.record(seen)
        return seen.concepts if seen else []

    async def _understanding(
        self,
        turn: Turn,
        st: ConversationState,
        text: str,
        intent: str,
        concepts: list[str],
        passages: list[Passage] | None,
    ) -> list[Passage]:
        """Deliberate over what was retrieved, searching again while it asks to and may; the passages to cite."""
        searches_left = self.config.search_again if passages is not None else 0
        while True:
            understood: UnderstandingOutput | None = await self._run_phase(
                turn,
                Phase.UNDERSTANDING,
                ConversationActivities.understanding,
                UnderstandingRequest(
                    user=text, intent=intent, concepts=concepts, passages=passages or [], searches_left=searches_left
                ),
                lambda out: f"{out.decision}: {out.reason}",
                "answered without deliberation",
            )
            if not (understood and understood.decision == "search_again" and searches_left > 0):
                return passages or []
            searches_left -= 1
            more = await self._experience(turn, st, understood.query or text)
            if more is None:
                return passages or []
            known = {p.ref for p in passages or []}
            passages = sorted([*(passages or []), *(p for p in more if p.ref not in known)], key=lambda p: -p.score)

    async def _yield(
        self,
        turn: Turn,
        text: str,
        draft: str,
        intent: str,
        found: list[Passage],
        retrieval: bool,
        streamed: int | None,
    ) -> tuple[str, list[Passage]]:
        """The answer and the passages it cites (the first response when the phase degraded)."""
        final: YieldOutput | None = await self._run_phase(
            turn,
            Phase.YIELD,
            ConversationActivities.yield_answer,
            YieldRequest(
                user=text,
                draft=draft,
                intent=intent,
                passages=found,
                retrieval=retrieval,
                stream_turn=streamed,
                speaker=self.config.speaker,
            ),
            lambda out: f"answer with {len(out.cited)} citations",
            "answered with the first response",
        )
        if final:
            answer = final.answer
            citations = [found[i - 1] for i in dict.fromkeys(final.cited) if 1 <= i <= len(found)]
        else:
            answer = draft or "Sorry, I could not put an answer together this time."
            citations = []
        if not retrieval:
            answer += "\n(answered without retrieval: the experience phase was unavailable)"
        return answer, citations

    async def _archive(self, turn: Turn, record: TurnRecord) -> TurnRecord:
        """Store the turn for later retrieval; when that fails for good, the record says so."""
        try:
            archive_wait = timedelta(seconds=self.config.archive_wait_s)
            await workflow.execute_activity_method(
                ConversationActivities.archive_turn,
                record,
                **storage_call(f"turn {record.number} · archive", deadline=archive_wait),
            )
        except ActivityError as err:  # the reply still goes out, saying what is missing
            stop_if_cancelled(err)
            note = f"archiving failed ({failure_cause(err)}): later turns cannot retrieve this one"
            turn.degraded.append(note)
            return record.model_copy(update={"reply": f"{record.reply}\n({note})", "degraded": list(turn.degraded)})
        return record

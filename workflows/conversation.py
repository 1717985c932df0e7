"""A PostChain conversation: one long-lived workflow per conversation, an actor with a mailbox.

Messages arrive as `ask` updates (which wait for the reply) or `tell` signals, and are processed one at
a time in arrival order. Each runs the AEIOU-Y chain: Action → Experience → Intention → Observation →
Understanding (→ Experience again, bounded) → Yield. A phase that keeps failing degrades the turn
instead of ending the conversation. After `continue_after_turns` turns the workflow continues as new
with its state compacted, so its history stays bounded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from activities.conversation import ConversationActivities
    from models.conversation import (
        ActionOutput,
        ActionRequest,
        ConversationConfig,
        ConversationStart,
        ConversationState,
        History,
        IntentionOutput,
        IntentionRequest,
        ObservationOutput,
        ObservationRequest,
        Observations,
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
        UserMessage,
        YieldOutput,
        YieldRequest,
        transcript_lines,
    )
    from models.text import shorten
    from models.usage import Ledger, Metered
    from workflows import console
    from workflows.inputs import parse_input
    from workflows.options import scoring_call, storage_call, text_call

R = TypeVar("R")
T = TypeVar("T")
PHASE_ATTEMPTS = 3  # then the phase degrades
HANDING_OVER = "the conversation is moving to a fresh run: send the message again"
HAND_OVER_PATCH = "continue-as-new-at-a-hard-bound"


def phase_call(summary: str) -> dict:
    return text_call(summary, attempts=PHASE_ATTEMPTS)


def experience_call(summary: str, wait_s: int) -> dict:
    """The scoring queue, but only `wait_s` for a scoring worker to pick the search up."""
    return scoring_call(summary) | {
        "schedule_to_start_timeout": timedelta(seconds=wait_s),
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
    """One message's trip through the chain: its phase records and what degraded."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.degraded: list[str] = []

    def record(self, phase: Phase, summary: str, ms: int, degraded: str | None = None) -> None:
        self.progress.phases.append(PhaseRecord(phase=phase, summary=summary[:300], ms=ms, degraded=degraded))
        if degraded:
            self.degraded.append(degraded)


@workflow.defn
class ConversationWorkflow:
    def __init__(self) -> None:
        self._state: ConversationState | None = None
        self._config = ConversationConfig()
        self._inbox: deque[tuple[int, str]] = deque()
        self._awaited: set[int] = set()  # messages an `ask` waits on: only their replies are kept, until taken
        self._replies: dict[int, Reply] = {}
        self._later: list[str] = []  # told during the hand-over to a new run: carried over
        self._next_message = 0
        self._progress = Progress()
        self._ledger = Ledger()
        self._ending = False
        self._handing_over = False

    # --- the mailbox -------------------------------------------------------------------------------
    def _enqueue(self, text: str) -> int:
        self._next_message += 1
        self._inbox.append((self._next_message, text))
        self._progress.queued = len(self._inbox)
        return self._next_message

    @workflow.update
    async def ask(self, text: str) -> Reply:
        """Send a message and wait for its reply; messages are answered one at a time, in arrival order."""
        number = self._enqueue(UserMessage(text=text).text)
        self._awaited.add(number)
        await workflow.wait_condition(lambda: number in self._replies)
        self._awaited.discard(number)
        return self._replies.pop(number)

    @ask.validator
    def _check(self, text: str) -> None:
        UserMessage(text=text)  # empty, too long or control characters: rejected before it enters history
        if self._ending:
            raise ValueError("the conversation is ending")
        if self._handing_over:  # this run answers only what it has queued; the next run takes new asks
            raise ValueError(HANDING_OVER)

    @workflow.signal
    def tell(self, text: str) -> None:
        """Fire and forget: the message is processed like any other; its reply lands in the history."""
        try:
            message = UserMessage(text=text)
        except ValidationError as exc:
            workflow.logger.warning("ignored a told message: %s", exc.errors()[0]["msg"])
            return
        if self._ending:
            return
        if self._handing_over:
            self._later.append(message.text)
        else:
            self._enqueue(message.text)

    @workflow.signal
    def end(self) -> None:
        """Finish the conversation once the mailbox is empty (messages told during a hand-over included)."""
        self._ending = True
        for text in self._later:
            self._enqueue(text)
        self._later.clear()

    # --- what others may see -------------------------------------------------------------------------
    @workflow.query
    def history(self) -> History | None:
        st = self._state
        if st is None:
            return None
        usage = st.usage.plus(self._ledger.usage)
        return History(
            conversation_id=st.conversation_id,
            turns_total=st.turns_total,
            runs=st.runs,
            summary=st.summary,
            recent=st.recent,
            usage=usage,
        )

    @workflow.query
    def observations(self) -> Observations | None:
        return self._state.observations if self._state else None

    @workflow.query
    def progress(self) -> Progress:
        return self._progress

    # --- the actor's loop ----------------------------------------------------------------------------
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> History:
        start = parse_input(ConversationStart, raw)
        self._config = start.config
        st = self._state = start.state or ConversationState(conversation_id=workflow.info().workflow_id)
        self._progress.turns_total = st.turns_total
        for text in start.pending:
            self._enqueue(text)
        self._show(st)
        turns_this_run = 0
        while True:
            await workflow.wait_condition(lambda: bool(self._inbox) or self._ending or self._handing_over)
            if not self._inbox:
                break
            number, text = self._inbox.popleft()
            self._progress.queued = len(self._inbox)
            reply = await self._turn(st, text)
            self._show(st)
            if number in self._awaited:
                self._replies[number] = reply
            turns_this_run += 1
            if (
                turns_this_run < self._config.continue_after_turns
                and not workflow.info().is_continue_as_new_suggested()
            ):
                continue
            if workflow.patched(HAND_OVER_PATCH):
                self._hand_over()
            elif not self._inbox:  # runs started before the hand-over: continue-as-new once the inbox is empty
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() or bool(self._inbox))
                if not self._inbox:
                    self._continue_as_new(st)
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._handing_over and not self._ending:
            self._continue_as_new(st)
        console.record(state="CLOSED")
        history = self.history()
        assert history is not None
        return history

    def _show(self, st: ConversationState) -> None:
        """Turns, queue and spend in the UI; cost and ACTIVE searchable."""
        spent = st.usage.plus(self._ledger.usage).estimated_cost_usd
        console.show(
            f"**conversation** · {st.turns_total} turns · {len(self._inbox)} queued · run {st.runs}",
            f"last: {shorten(st.recent[-1].user, 80)}" if st.recent else "",
            f"spend ${spent:.4f}",
        )
        console.record(state="ACTIVE", cost_usd=spent)

    def _hand_over(self) -> None:
        """A hard bound, even under steady traffic: no new asks in this run. Queued messages up to the last
        one an `ask` waits on are still answered here (the ask's reply can only come from this run); the
        rest, and whatever is told from now on, go to the next run in order."""
        self._handing_over = True
        asks = [i for i, (number, _) in enumerate(self._inbox) if number in self._awaited]
        keep = asks[-1] + 1 if asks else 0
        while len(self._inbox) > keep:
            self._later.insert(0, self._inbox.pop()[1])
        self._progress.queued = len(self._inbox)

    def _continue_as_new(self, st: ConversationState) -> None:
        """Carry the compacted state (recent turns, summary lines, observations, usage) into a new run."""
        carried = st.model_copy(update={"runs": st.runs + 1, "usage": st.usage.plus(self._ledger.usage)})
        # with Worker Versioning the next run starts on the deployment's current version (new code ships to
        # conversations here, never mid-run: each run stays pinned to the version it started on)
        workflow.continue_as_new(
            ConversationStart(config=self._config, state=carried, pending=self._later),
            initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE,
        )

    async def _run(
        self, turn: Turn, phase: Phase, call: Awaitable[T], summary: Callable[[T], str], degraded: str
    ) -> T | None:
        """Await one phase's activity and record it; when it keeps failing, record the degradation, return None."""
        started = workflow.now()
        try:
            result = await call
        except ActivityError as err:
            cause = getattr(err.cause, "message", None) or str(err.cause or err)
            turn.record(phase, f"failed: {cause}", elapsed_ms(started), f"{degraded} ({phase.value} failed: {cause})")
            return None
        turn.record(phase, summary(result), elapsed_ms(started))
        return result

    async def _phase(
        self,
        turn: Turn,
        phase: Phase,
        activity: Callable[[Any, Any], Awaitable[Metered[R]]],
        request: BaseModel,
        summary: Callable[[R], str],
        degraded: str,
    ) -> R | None:
        """A model phase on the provider queue; its usage goes into the ledger."""
        call = workflow.execute_activity_method(activity, request, **phase_call(step(turn, phase)))
        metered = await self._run(turn, phase, call, lambda m: summary(m.value), degraded)
        return self._ledger.take(metered) if metered else None

    async def _experience(self, turn: Turn, st: ConversationState, query: str) -> list[Passage] | None:
        request = RetrieveRequest(
            conversation_id=st.conversation_id, query=query, before_turn=st.turns_total + 1, k=self._config.top_k
        )
        call = workflow.execute_activity(
            "retrieve_passages",
            request,
            result_type=Retrieved,
            **experience_call(step(turn, Phase.EXPERIENCE), self._config.retrieval_wait_s),
        )
        found = await self._run(
            turn, Phase.EXPERIENCE, call, describe_retrieval, "answered without retrieval: experience unavailable"
        )
        return found.passages if found else None

    async def _turn(self, st: ConversationState, text: str) -> Reply:
        number = st.turns_total + 1
        began = workflow.now()
        turn = Turn(Progress(turn=number, user=text, queued=len(self._inbox), turns_total=st.turns_total))
        self._progress = turn.progress
        acts = ConversationActivities

        action: ActionOutput | None = await self._phase(
            turn,
            Phase.ACTION,
            acts.action,
            ActionRequest(user=text, recent=transcript_lines(st.recent[-3:])),
            lambda out: out.response,
            "no first response",
        )
        draft = action.response if action else ""
        passages = await self._experience(turn, st, text)
        retrieval = passages is not None
        intent: IntentionOutput | None = await self._phase(
            turn,
            Phase.INTENTION,
            acts.intention,
            IntentionRequest(user=text, draft=draft),
            lambda out: out.intent,
            "intent unknown",
        )
        intent_text = intent.intent if intent else "unknown"
        seen: ObservationOutput | None = await self._phase(
            turn,
            Phase.OBSERVATION,
            acts.observation,
            ObservationRequest(user=text, draft=draft, intent=intent_text),
            lambda out: f"concepts: {', '.join(out.concepts) or 'none'}; {len(out.links)} links",
            "nothing observed",
        )
        if seen:
            st.observations.record(seen)
        concepts = seen.concepts if seen else []

        searches_left = self._config.search_again if retrieval else 0
        while True:
            understood: UnderstandingOutput | None = await self._phase(
                turn,
                Phase.UNDERSTANDING,
                acts.understanding,
                UnderstandingRequest(
                    user=text,
                    intent=intent_text,
                    concepts=concepts,
                    passages=passages or [],
                    searches_left=searches_left,
                ),
                lambda out: f"{out.decision}: {out.reason}",
                "answered without deliberation",
            )
            if not (understood and understood.decision == "search_again" and searches_left > 0):
                break
            searches_left -= 1
            more = await self._experience(turn, st, understood.query or text)
            if more is None:
                break
            known = {p.ref for p in passages or []}
            passages = sorted([*(passages or []), *(p for p in more if p.ref not in known)], key=lambda p: -p.score)

        found = passages or []
        final: YieldOutput | None = await self._phase(
            turn,
            Phase.YIELD,
            acts.yield_answer,
            YieldRequest(user=text, draft=draft, intent=intent_text, passages=found, retrieval=retrieval),
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

        record = TurnRecord(
            number=number,
            user=text,
            reply=answer,
            intent=intent_text,
            citations=citations,
            phases=turn.progress.phases,
            degraded=turn.degraded,
            started_at=began,
            finished_at=workflow.now(),
        )
        try:
            archive_wait = timedelta(seconds=self._config.archive_wait_s)
            await workflow.execute_activity_method(
                acts.archive_turn, record, **storage_call(f"turn {number} · archive", deadline=archive_wait)
            )
        except ActivityError as err:  # the reply still goes out, saying what is missing
            cause = getattr(err.cause, "message", None) or str(err.cause or err)
            note = f"archiving failed ({cause}): later turns cannot retrieve this one"
            turn.degraded.append(note)
            answer = record.reply = f"{answer}\n({note})"
            record.degraded = list(turn.degraded)
        st.add(record, self._config.keep_recent)
        self._progress = Progress(turns_total=st.turns_total, queued=len(self._inbox))
        return Reply(turn=number, text=answer, citations=citations, degraded=turn.degraded, phases=record.phases)

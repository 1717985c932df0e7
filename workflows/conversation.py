"""A PostChain conversation: one long-lived workflow per conversation, an actor with a mailbox.

Messages arrive as `ask` updates (which wait for the reply) or `tell` signals and are answered one at a
time, in arrival order (`workflows/mailbox.py` says what happens to each). Each runs the AEIOU-Y chain
(`workflows/postchain.py`), streamed to subscribers as it is written (`workflows/turn_stream.py`). After
`continue_after_turns` turns (or sooner when stream polls have made its history long) the workflow hands
over: it continues as new with its state compacted, the messages still waiting and the stream's state, so
its history stays bounded.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError
    from temporalio.contrib.workflow_streams import WorkflowStream

    from models.conversation import (
        ConversationConfig,
        ConversationStart,
        ConversationState,
        History,
        Observations,
        Progress,
        Reply,
        UserMessage,
    )
    from models.text import shorten
    from workflows import console
    from workflows.budget import Ledger, run_models
    from workflows.inputs import parse_input
    from workflows.mailbox import Mailbox
    from workflows.patches import CARRIED_FIRST_PATCH, END_AFTER_HAND_OVER_PATCH, HAND_OVER_PATCH
    from workflows.postchain import PostChain
    from workflows.turn_stream import TurnStream


def valid_start(raw: dict[str, Any]) -> ConversationStart | None:
    """The start input when it is valid (`run` reports it when it is not): for the stream's carried state."""
    try:
        return ConversationStart.model_validate(raw)
    except ValidationError:
        return None


@workflow.defn
class ConversationWorkflow:
    @workflow.init
    def __init__(self, raw: dict[str, Any]) -> None:
        self._state: ConversationState | None = None
        self._mailbox = Mailbox()
        self._ledger = Ledger()
        start = valid_start(raw)
        self._stream = TurnStream(WorkflowStream(prior_state=start.stream if start else None))
        self._chain = PostChain(ConversationStart().config, self._ledger, self._stream)
        self._asks: dict[int, str] = {}  # message number → the id of the `ask` update waiting on it
        self._leaving = False  # a run from before the hand-over continues as new once this is set
        # The messages a hand-over carried are queued before any handler of this run: they were sent before
        # whatever reaches the new run, and the mailbox's bound counts them. Runs from before the patch
        # queued them in `run`, after the first handlers had run.
        self._carried_queued = bool(start and start.pending) and workflow.patched(CARRIED_FIRST_PATCH.id)
        if start and self._carried_queued:
            for text in start.pending:
                self._mailbox.tell(text)

    # --- messages ----------------------------------------------------------------------------------
    @workflow.update
    async def ask(self, text: str) -> Reply:
        """Send a message and wait for its reply; messages are answered one at a time, in arrival order."""
        number = self._mailbox.ask(UserMessage(text=text).text)
        if (info := workflow.current_update_info()) is not None:
            self._asks[number] = info.id
        self._chain.progress.queued = self._mailbox.queued
        await workflow.wait_condition(lambda: self._mailbox.has_reply(number))
        return self._mailbox.reply(number)

    @ask.validator
    def validate_ask(self, text: str) -> None:
        """Empty, too long or control characters, an ending conversation, a hand-over or a full mailbox:
        rejected before it enters history."""
        message = UserMessage(text=text)
        if (reason := self._mailbox.turned_away(message.text, asking=True)) is not None:
            raise ValueError(reason)

    @workflow.signal
    def tell(self, text: str) -> None:
        """Fire and forget: the message is answered like any other; its reply lands in the history.
        A signal cannot be rejected: what the mailbox refuses is logged, with the reason."""
        try:
            message = UserMessage(text=text)
        except ValidationError as exc:
            workflow.logger.warning("ignored a told message: %s", exc.errors()[0]["msg"])
            return
        if (reason := self._mailbox.tell(message.text)) is not None:
            workflow.logger.warning("refused a told message: %s", reason)
        self._chain.progress.queued = self._mailbox.queued

    @workflow.signal
    def end(self) -> None:
        """Finish the conversation once every accepted message is answered (carried ones included)."""
        self._mailbox.end()

    # --- what others may see -------------------------------------------------------------------------
    @workflow.query
    def history(self) -> History | None:
        """The conversation so far: recent turns, summary lines, usage across all its runs."""
        return None if self._state is None else self._history(self._state)

    @workflow.query
    def observations(self) -> Observations | None:
        """The concepts and links the Observation phase has gathered."""
        return self._state.observations if self._state else None

    @workflow.query
    def progress(self) -> Progress:
        """The turn in progress, phase by phase."""
        return self._chain.progress

    # --- the actor's loop ----------------------------------------------------------------------------
    @workflow.run
    async def run(self, raw: dict[str, Any]) -> History:
        start = parse_input(ConversationStart, raw)
        self._ledger.models = run_models(start.config.models)  # each run of the conversation names its model
        self._chain = PostChain(start.config, self._ledger, self._stream)
        st = self._state = start.state or ConversationState(conversation_id=workflow.info().workflow_id)
        self._chain.progress.turns_total = st.turns_total
        if not self._carried_queued:
            for text in start.pending:
                self._mailbox.tell(text)
        self._show(st)
        turns_this_run = 0
        while (message := await self._next_message()) is not None:
            number, text = message
            reply = await self._chain.run(st, text, self._mailbox.queued, self._asks.pop(number, None))
            self._show(st)
            self._mailbox.answered(number, reply)
            turns_this_run += 1
            if self._due(turns_this_run, start.config):
                await self._hand_over()
        return self._finish(st, start)

    async def _next_message(self) -> tuple[int, str] | None:
        """The next message to answer here; None when this run ends: its inbox empty once `end` came or the
        hand-over began, and every handler done (a message that arrived meanwhile is answered first)."""
        mailbox = self._mailbox
        while not self._leaving:
            await workflow.wait_condition(mailbox.ready)
            if (message := mailbox.take()) is not None:
                return message
            self._stream.detach()  # stream subscribers' long polls are handlers too
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not (mailbox.unanswered() and workflow.patched(END_AFTER_HAND_OVER_PATCH.id)):
                return None
            mailbox.answer_carried()  # `end` came during the hand-over: answer here, then close
        return None

    def _due(self, turns_this_run: int, config: ConversationConfig) -> bool:
        """Time to hand over to a new run: enough turns, Temporal suggests it, or stream polls crowd it."""
        return (
            turns_this_run >= config.continue_after_turns
            or workflow.info().is_continue_as_new_suggested()
            or self._stream.crowded()
        )

    async def _hand_over(self) -> None:
        """No new asks in this run; the rest goes to the next. Runs from before the hand-over continued as new
        once their inbox was empty and their handlers done (`_leaving`)."""
        mailbox = self._mailbox
        if workflow.patched(HAND_OVER_PATCH.id):
            mailbox.hand_over()
            self._chain.progress.queued = mailbox.queued
        elif not mailbox.inbox:
            self._stream.detach()
            await workflow.wait_condition(lambda: workflow.all_handlers_finished() or bool(mailbox.inbox))
            self._leaving = not mailbox.inbox

    def _finish(self, st: ConversationState, start: ConversationStart) -> History:
        """The run's one way out: continue as new (a hand-over), or close with the conversation's history."""
        if self._leaving or self._mailbox.continues():
            self._continue_as_new(st, start)
        console.set_search_attributes(state="CLOSED")
        return self._history(st)

    def _history(self, st: ConversationState) -> History:
        return History(
            conversation_id=st.conversation_id,
            turns_total=st.turns_total,
            runs=st.runs,
            summary=st.summary,
            recent=st.recent,
            usage=st.usage.plus(self._ledger.usage),
        )

    def _show(self, st: ConversationState) -> None:
        """Turns, queue and spend in the UI; cost and ACTIVE searchable."""
        spent = st.usage.plus(self._ledger.usage).estimated_cost_usd
        console.show(
            f"**conversation** · {st.turns_total} turns · {self._mailbox.queued} queued · run {st.runs}",
            f"last: {shorten(st.recent[-1].user, 80)}" if st.recent else "",
            f"spend ${spent:.4f}",
        )
        console.set_search_attributes(state="ACTIVE", cost_usd=spent)

    def _continue_as_new(self, st: ConversationState, start: ConversationStart) -> None:
        """Carry the compacted state (recent turns, summary lines, observations, usage) and the messages still
        waiting into a new run."""
        carried = st.model_copy(update={"runs": st.runs + 1, "usage": st.usage.plus(self._ledger.usage)})
        # with Worker Versioning the next run starts on the deployment's current version (new code ships to
        # conversations here, never mid-run: each run stays pinned to the version it started on)
        stream = self._stream.stream.get_state()
        workflow.continue_as_new(
            ConversationStart(config=start.config, state=carried, pending=self._mailbox.carried, stream=stream),
            initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE,
        )

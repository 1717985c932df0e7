"""After a hand-over the carried messages come first (#27 item 8): the new run queues them before any of its
handlers runs, so an `ask` that reaches the new run as soon as it starts (as `chat` re-sends one refused
during the hand-over) is answered after them, and the mailbox's bound counts them.

"As soon as it starts" is the new run's first workflow task: update-with-start puts the ask there, next to
the start input a hand-over gives (`ConversationStart` with `state` and `pending`), every time. A real
hand-over (`continue_after_turns`) shows the same order end to end.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore
from models.conversation import ConversationConfig, ConversationStart, ConversationState, History
from models.settings import WORKFLOW_QUEUE
from starter.chat_cmd import ask
from tests.conftest import eventually, running_workers
from workflows.conversation import ConversationWorkflow
from workflows.mailbox import MAX_WAITING, full

CARRIED = ["Carried 1: my kite is red.", "Carried 2: my boat is green.", "Carried 3: my roof is grey."]
NEW = "What colour is my boat?"


def handed_over(conversation_id: str, pending: list[str]) -> ConversationStart:
    """The start input of a run a hand-over started: one turn answered before, `pending` carried."""
    state = ConversationState(conversation_id=conversation_id, turns_total=1, runs=2)
    return ConversationStart(config=ConversationConfig(keep_recent=10), state=state, pending=pending)


def with_start(conversation_id: str, pending: list[str]) -> WithStartWorkflowOperation:
    return WithStartWorkflowOperation(
        ConversationWorkflow.run,
        handed_over(conversation_id, pending),
        id=conversation_id,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        task_queue=WORKFLOW_QUEUE,
    )


async def turns(handle: WorkflowHandle, count: int) -> History:
    async def answered() -> History | None:
        try:
            history = await handle.query(ConversationWorkflow.history, rpc_timeout=timedelta(seconds=2))
        except RPCError:
            return None
        return history if history and history.turns_total >= count else None

    return await eventually(answered, 60, f"{count} turns answered")


async def test_carried_messages_are_answered_before_an_ask_in_the_new_runs_first_task(module_dev_env, tmp_path):
    client = module_dev_env.client
    conversation_id = f"conv-{uuid.uuid4().hex[:8]}"
    async with running_workers(client, GuardedProvider(OfflineProvider(), None), LocalStore(tmp_path)):
        reply = await client.execute_update_with_start_workflow(
            ConversationWorkflow.ask, NEW, start_workflow_operation=with_start(conversation_id, CARRIED)
        )
        handle = client.get_workflow_handle(conversation_id)
        history = await turns(handle, 1 + len(CARRIED) + 1)
        await handle.signal(ConversationWorkflow.end)
        await handle.result()
    assert [t.user for t in history.recent] == [*CARRIED, NEW], "carried first, in their order, then the ask"
    assert reply.turn == 1 + len(CARRIED) + 1


@pytest.mark.parametrize("carried", [MAX_WAITING - 1, MAX_WAITING])
async def test_the_mailbox_bound_counts_carried_messages(module_dev_env, tmp_path, carried):
    """With the bound's worth of carried messages the new run's first ask is refused as the bound says; with
    one fewer it is accepted (the bound is exact)."""
    client = module_dev_env.client
    conversation_id = f"conv-{uuid.uuid4().hex[:8]}"
    pending = [f"Carried {i}." for i in range(carried)]
    async with running_workers(client, GuardedProvider(OfflineProvider(latency_s=0.5), None), LocalStore(tmp_path)):
        try:
            if carried < MAX_WAITING:
                update = await client.start_update_with_start_workflow(
                    ConversationWorkflow.ask,
                    NEW,
                    start_workflow_operation=with_start(conversation_id, pending),
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                )
                assert update.id, "accepted: it is the bound's last place"
            else:
                with pytest.raises(WorkflowUpdateFailedError) as refused:
                    await client.execute_update_with_start_workflow(
                        ConversationWorkflow.ask, NEW, start_workflow_operation=with_start(conversation_id, pending)
                    )
                assert str(refused.value.cause).endswith(full(MAX_WAITING))
                described = await client.get_workflow_handle(conversation_id).describe()
                assert described.status == WorkflowExecutionStatus.RUNNING, "the run goes on with its carried ones"
        finally:
            await client.get_workflow_handle(conversation_id).terminate("test over")


async def test_a_real_hand_over_answers_carried_messages_before_a_re_sent_ask(module_dev_env, tmp_path):
    """One turn per run: messages told during the first turn are carried; an ask sent while the run hands
    over is refused and re-sent (as `chat` does) and answered after them."""
    client = module_dev_env.client
    told = ["Told 1: my cart is blue.", "Told 2: my bell is gold."]
    async with running_workers(client, GuardedProvider(OfflineProvider(latency_s=0.3), None), LocalStore(tmp_path)):
        handle = await client.start_workflow(
            ConversationWorkflow.run,
            ConversationStart(config=ConversationConfig(continue_after_turns=1, keep_recent=10)),
            id=f"conv-{uuid.uuid4().hex[:8]}",
            task_queue=WORKFLOW_QUEUE,
        )
        first = await handle.start_update(
            ConversationWorkflow.ask, "First: my lamp is white.", wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        for text in told:
            await handle.signal(ConversationWorkflow.tell, text)
        await first.result()
        later = await ask(handle, NEW)
        history = await turns(handle, 4)
        await handle.signal(ConversationWorkflow.end)
        await handle.result()
    assert [t.user for t in history.recent] == ["First: my lamp is white.", *told, NEW]
    assert later.turn == 4 and history.runs >= 2

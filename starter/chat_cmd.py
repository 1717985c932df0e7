"""`atelier chat`: talk to a PostChain conversation: the answer streams to stdout as it is written, each
phase's summary goes to stderr as it completes (`starter/chat_stream.py`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from kit.storage import artifact_key, make_store
from models.conversation import (
    ConversationConfig,
    ConversationStart,
    History,
    PhaseRecord,
    Progress,
    Reply,
    TurnRecord,
    UserMessage,
)
from models.settings import Settings
from starter.chat_stream import AnswerView, resume_turn, stream_offset, streamed_send
from starter.common import (
    Pipeline,
    UsageError,
    add_model_flags,
    attached,
    bounded_query,
    chosen_models,
    connect_or_explain,
    existing,
    stderr,
    validated,
)
from starter.conversing import ask
from starter.follow import WorkerSilence
from starter.launch import labelled_start
from workflows.conversation import ConversationWorkflow


def add_parser(sub: argparse._SubParsersAction) -> None:
    chat = sub.add_parser("chat", help="hold a conversation (interactive unless --message or --history)")
    chat.add_argument("--id", dest="conversation_id", default=None, help="the conversation to continue")
    chat.add_argument("--message", default=None, help="send one message, print the reply and exit")
    chat.add_argument("--history", action="store_true", help="print the transcript and exit")
    chat.add_argument("--json", action="store_true", help="print replies (or the history) as JSON")
    chat.add_argument("--end", action="store_true", help="end the conversation (after its queued messages)")
    chat.add_argument(
        "--continue-after", type=int, default=20, help="turns per workflow run before continue-as-new (new chats)"
    )
    add_model_flags(chat)  # a new chat's models


def new_config(args: argparse.Namespace, settings: Settings) -> ConversationConfig:
    """A new conversation's settings, checked before anything connects (its models too)."""
    models = chosen_models(args, settings)
    return validated(ConversationConfig, continue_after_turns=args.continue_after, models=models)


async def open_conversation(
    client: Client, args: argparse.Namespace, settings: Settings, config: ConversationConfig
) -> WorkflowHandle:
    """The running conversation with this id, started (with `config`) if it does not exist yet."""
    conversation_id = args.conversation_id or f"chat-{uuid.uuid4().hex[:12]}"
    attached["id"] = conversation_id
    try:
        handle = await labelled_start(
            client,
            settings,
            "conversation",
            f"conversation {conversation_id}",
            ConversationWorkflow.run,
            ConversationStart(config=config),
            conversation_id,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except WorkflowAlreadyStartedError as exc:
        raise UsageError(f"conversation {conversation_id!r} has ended; start a new one") from exc
    if args.conversation_id is None:
        stderr.print(f"conversation {conversation_id} (continue it with --id {conversation_id})")
    return handle


def show_phase(record: PhaseRecord) -> None:
    mark = "[yellow]![/]" if record.degraded else "[green]✓[/]"
    stderr.print(f"  {mark} [bold]{record.phase.value}[/] [dim]({record.ms} ms)[/] {record.summary}")


def show_reply(reply: Reply) -> None:
    print(f"atelier: {reply.text}")
    for number, passage in enumerate(reply.citations, 1):
        print(f"   [{number}] {passage.title} ({passage.ref}, similarity {passage.score:.2f})")


async def talk(client: Client, handle: WorkflowHandle, text: str) -> Reply:
    """Ask, and show the turn as it is written (runs from before streaming: phase by phase, then the reply)."""
    found = await stream_offset(client, handle)
    if found is None:
        reply = await send(handle, text)
        show_reply(reply)
        return reply
    stream, offset = found
    return await streamed_send(
        stream, offset, lambda update_id: ask(handle, text, update_id=update_id), AnswerView(show_phase=show_phase)
    )


async def show_turn_in_progress(client: Client, handle: WorkflowHandle) -> None:
    """On attaching to a conversation in the middle of a turn: that turn from its start, to its reply."""
    progress: Progress | None = await bounded_query(handle, ConversationWorkflow.progress, Progress)
    if progress is None or progress.turn is None or (found := await stream_offset(client, handle)) is None:
        return
    stderr.print(f"(turn {progress.turn} is being answered: {progress.user})")
    await resume_turn(found[0], progress.turn, AnswerView(show_phase=show_phase))


async def send(handle: WorkflowHandle, text: str) -> Reply:
    """Ask, printing each phase of this message's turn as the workflow records it (no stream: `--json`, and
    runs from before streaming)."""
    reply_task = asyncio.ensure_future(ask(handle, text))
    shown, turn = 0, None
    silent = WorkerSilence()
    while not reply_task.done():
        progress: Progress | None = await bounded_query(handle, ConversationWorkflow.progress, Progress)
        silent.observe(progress is not None)
        if progress and progress.user == text and progress.turn is not None:
            if progress.turn != turn:
                turn, shown = progress.turn, 0
            for record in progress.phases[shown:]:
                show_phase(record)
            shown = len(progress.phases)
        await asyncio.wait([reply_task], timeout=0.25)
    reply = reply_task.result()
    for record in reply.phases[shown if turn == reply.turn else 0 :]:
        show_phase(record)
    return reply


async def transcript(handle: WorkflowHandle, settings: Settings) -> list[TurnRecord]:
    """Every turn: the archive in the artifact store, completed by the workflow's recent turns."""
    store = make_store(settings)
    turns = {}
    for key in await store.keys(artifact_key("conversations", handle.id, "turns")):
        turn = TurnRecord.model_validate_json(await store.read(key))
        turns[turn.number] = turn
    history: History | None = await bounded_query(handle, ConversationWorkflow.history, History | None)
    for turn in history.recent if history else []:
        turns[turn.number] = turn
    return [turns[n] for n in sorted(turns)]


async def print_history(handle: WorkflowHandle, settings: Settings, as_json: bool) -> int:
    turns = await transcript(handle, settings)
    if as_json:
        print(json.dumps([t.model_dump(mode="json") for t in turns], indent=2))
        return 0
    for turn in turns:
        print(f"[{turn.number}] you: {turn.user}")
        print(f"    atelier: {turn.reply}")
    stderr.print(f"{len(turns)} turns")
    return 0


async def repl(client: Client, handle: WorkflowHandle, settings: Settings) -> int:
    await show_turn_in_progress(client, handle)
    stderr.print("type a message; /history shows the transcript, /quit (or Ctrl-D) leaves")
    while True:
        try:
            line = await asyncio.to_thread(input, "you> ")
        except EOFError:
            return 0
        text = line.strip()
        if not text:
            continue
        if text in {"/quit", "/exit"}:
            return 0
        if text == "/history":
            await print_history(handle, settings, as_json=False)
            continue
        try:
            UserMessage(text=text)
        except ValueError as exc:
            stderr.print(f"[red]not sent:[/] {str(exc).splitlines()[-1]}")
            continue
        await talk(client, handle, text)
        sys.stdout.flush()


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.message is not None:
        if not args.message.strip():
            raise UsageError("the message is empty")
        message = validated(UserMessage, text=args.message)
    if args.history or args.end:
        if args.conversation_id is None:
            raise UsageError(f"{'--history' if args.history else '--end'} needs --id CONVERSATION")
        handle, _ = await existing(await connect_or_explain(settings), args.conversation_id)
        if args.history:
            return await print_history(handle, settings, args.json)
        await handle.signal(ConversationWorkflow.end)
        stderr.print(f"conversation {handle.id} ends after its queued messages")
        return 0
    config = new_config(args, settings)
    client = await connect_or_explain(settings)
    handle = await open_conversation(client, args, settings, config)
    if args.message is None:
        return await repl(client, handle, settings)
    if args.json:
        print((await send(handle, message.text)).model_dump_json(indent=2))
    else:
        await talk(client, handle, message.text)
    return 0


async def _state_json(handle: WorkflowHandle) -> dict | None:
    history = await bounded_query(handle, ConversationWorkflow.history, History | None)
    return history.model_dump(mode="json") if history else None


async def _result(client: Client, workflow_id: str, settings: Settings, out: object) -> int:
    return await print_history(client.get_workflow_handle(workflow_id), settings, as_json=True)


PIPELINE = Pipeline(state=_state_json, result=_result)

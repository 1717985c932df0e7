"""Conversations that stream: the answer is shown as the model writes it, from the conversation's Workflow
Stream, through retries, worker crashes, reconnects and continue-as-new, and the history stays bounded."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import signal
import subprocess
import sys
import time
import uuid

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

from activities.providers.base import TextStream
from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from activities.providers.openai_provider import OpenAIProvider
from activities.providers.structured import partial_field
from activities.providers.usage import CallNotes
from kit.storage import LocalStore
from models.conversation import ConversationConfig, ConversationStart, History, Phase, Reply, YieldOutput
from models.conversation_stream import TextDelta
from models.settings import IMAGE_QUEUE, SCORING_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE, Settings
from starter.chat_cmd import ask
from starter.chat_stream import RESTORE_AND_CLEAR, SAVE, AnswerView, follow_turn, stream_offset, streamed_send
from tests.conftest import ROOT, address_of, atelier_env, eventually, running_workers, spawn, start_worker
from tests.fake_openai import OPENROUTER_TEXT_COST, FakeOpenAI, Fault
from workflows.conversation import ConversationWorkflow

EVENTS_PER_TURN = 180  # stated in the README: about 140 measured with one subscriber (60 without streaming)
BYTES_PER_TURN = 160_000


class Terminal(io.StringIO):
    """A stdout that says it is a terminal and notes when each piece was written."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[float, str]] = []

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.writes.append((time.monotonic(), text))
        return super().write(text)

    def screen(self) -> str:
        """What the terminal shows: the text, with each restore of the saved cursor clearing what followed it."""
        written, shown, saved, i = self.getvalue(), "", 0, 0
        while i < len(written):
            if written.startswith(SAVE, i):
                saved, i = len(shown), i + len(SAVE)
            elif written.startswith(RESTORE_AND_CLEAR, i):
                shown, i = shown[:saved], i + len(RESTORE_AND_CLEAR)
            else:
                shown, i = shown + written[i], i + 1
        return shown


async def start(client: Client, **config) -> WorkflowHandle:
    return await client.start_workflow(
        ConversationWorkflow.run,
        ConversationStart(config=ConversationConfig(**config)),
        id=f"stream-{uuid.uuid4().hex[:10]}",
        task_queue=WORKFLOW_QUEUE,
    )


async def say(client: Client, handle: WorkflowHandle, text: str, out: io.StringIO) -> Reply:
    """What `chat` does with a message: ask, showing the turn as it streams."""
    found = await stream_offset(client, handle)
    assert found is not None, "the conversation has a stream"
    return await streamed_send(*found, lambda update_id: ask(handle, text, update_id=update_id), AnswerView(out))


async def test_the_answer_arrives_in_pieces_that_add_up_to_the_reply(time_env, tmp_path):
    provider = GuardedProvider(OfflineProvider(latency_s=1.0), None)
    async with running_workers(time_env.client, provider, LocalStore(tmp_path)):
        handle = await start(time_env.client)
        out = Terminal()
        sent = time.monotonic()
        reply = await say(time_env.client, handle, "Tell me about the lighthouse keeper who collects sea glass.", out)
        returned = time.monotonic()
    assert out.screen() == f"atelier: {reply.text}\n" and RESTORE_AND_CLEAR not in out.getvalue()
    pieces = [(at, text) for at, text in out.writes if text.strip() and not text.startswith("atelier")]
    assert len(pieces) >= 3, pieces
    first = pieces[0][0]
    assert returned - first >= 0.5, "text was on screen well before the reply came back"
    assert first - sent >= 3.0, "the answer is the last phase: it starts after the others"


async def test_a_reply_cut_mid_stream_is_retried_and_the_screen_shows_only_the_final_answer(
    time_env, fake_openai, tmp_path
):
    """The test server drops the answer's stream after a few chunks (no last chunk, no [DONE]): the phase
    fails as retryable, its next attempt streams a different text, and the terminal erases the first."""
    fake_openai.delays["chat"] = 0.4
    fake_openai.cut_stream("YieldOutput", 4)
    provider = GuardedProvider(OpenAIProvider(Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-stream")), None)
    async with running_workers(time_env.client, provider, LocalStore(tmp_path)):
        handle = await start(time_env.client)
        out = Terminal()
        reply = await say(time_env.client, handle, "What do lighthouse keepers do in winter?", out)
        history: History = await handle.query(ConversationWorkflow.history)
    yields = [r for r in fake_openai.calls("chat") if r.body["response_format"]["json_schema"]["name"] == "YieldOutput"]
    assert len(yields) == 2 and all(r.body.get("stream") for r in yields), "streamed, and asked again once"
    assert yields[0].body["stream_options"] == {"include_usage": True}
    assert RESTORE_AND_CLEAR in out.getvalue(), "the first attempt's text was shown, then erased"
    assert out.screen() == f"atelier: {reply.text}\n", "only the final answer stays on screen"
    assert history.recent[-1].reply == reply.text and history.usage.models, "the usage of both attempts is counted"


async def test_continue_as_new_under_steady_streaming_loses_nothing(time_env, tmp_path):
    """Two turns a run: asks stream while told messages queue; a subscriber follows the whole conversation
    across runs and sees every turn end; every ask's shown text is its reply."""
    provider = GuardedProvider(OfflineProvider(latency_s=0.2), None)
    async with running_workers(time_env.client, provider, LocalStore(tmp_path)):
        handle = await start(time_env.client, continue_after_turns=2)
        done: list[int] = []

        async def follow_everything() -> None:
            found = await stream_offset(time_env.client, handle)
            assert found
            async for item in found[0].subscribe(["turn"], 0):
                if item.data["kind"] == "done":
                    done.append(item.data["turn"])

        follower = asyncio.ensure_future(follow_everything())
        replies = []
        for i in range(3):
            await handle.signal(ConversationWorkflow.tell, f"Note {i}: the kite is red.")
            out = io.StringIO()
            reply = await say(time_env.client, handle, f"Question {i}: what colour is the kite?", out)
            assert out.getvalue().startswith(f"atelier: {reply.text}\n"), (out.getvalue(), reply.text)
            replies.append(reply)
        history = await handle.query(ConversationWorkflow.history)
        await eventually(lambda: len(done) >= 6 or follower.done(), 30, "the follower")
        follower.cancel()
    assert history.turns_total == 6 and history.runs >= 3, "continued as new, twice"
    assert sorted(done) == list(range(1, 7)), f"the follower saw every turn end: {done}"
    assert [r.turn for r in replies] == [2, 4, 6], "each ask answered after the note told before it"


async def test_events_and_bytes_per_turn_stay_within_the_stated_bound(time_env, tmp_path):
    provider = GuardedProvider(OfflineProvider(latency_s=0.3), None)
    async with running_workers(time_env.client, provider, LocalStore(tmp_path)):
        handle = await start(time_env.client, continue_after_turns=20)
        for i in range(3):
            await say(time_env.client, handle, f"Message {i}: tell me a short story about a heron.", io.StringIO())
        history = await handle.fetch_history()
    size = len(history.to_json())
    assert len(history.events) / 3 <= EVENTS_PER_TURN, len(history.events)
    assert size / 3 <= BYTES_PER_TURN, size
    polls = [e for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]
    assert len(polls) / 3 <= 25, "stream polls per turn (each is an update; a run allows 2,000)"


@pytest.mark.parametrize("mode", ["openai", "openrouter", "vllm"])
async def test_the_provider_streams_the_field_and_reads_usage_and_mid_stream_errors(mode):
    """Straight against the test server in each mode: the answer field's text arrives in pieces that make up
    the validated value; usage comes from the last chunk (OpenRouter: with its cost); an error sent as a
    chunk part-way (OpenRouter) is the provider's error, classified like any other."""
    fake = FakeOpenAI(mode)
    fake.start()
    try:
        provider = OpenAIProvider(Settings(LLM_BASE_URL=fake.url, LLM_API_KEY="sk-stream"))
        pieces: list[str] = []
        notes = CallNotes()
        answer = await provider.structured(
            YieldOutput, "system", "Write the final answer.", None, None, notes, TextStream("answer", pieces.append)
        )
        assert len(pieces) >= 2 and "".join(pieces) == answer.answer, pieces
        assert notes and notes[0].output_tokens > 0, "usage from the stream's last chunk"
        if mode == "openrouter":
            assert notes[0].cost_usd == OPENROUTER_TEXT_COST
            fake.fail("chat", Fault(body={"error": {"code": 502, "message": "upstream model crashed"}}))
            with pytest.raises(ApplicationError) as failure:
                await provider.structured(YieldOutput, "s", "p", None, None, None, TextStream("answer", pieces.append))
            assert failure.value.type == "ProviderHTTP502" and not failure.value.non_retryable
            assert "upstream model crashed" in failure.value.message
    finally:
        fake.stop()


def delta(text: str, attempt: int = 1, take: int = 1) -> TextDelta:
    return TextDelta(turn=1, phase=Phase.YIELD, attempt=attempt, take=take, text=text)


def test_the_view_replaces_an_attempt_only_when_its_text_differs():
    tty, pipe = Terminal(), io.StringIO()
    for out in (tty, pipe):
        view = AnswerView(out)
        view.text(delta("Herons wait "))
        view.text(delta("Herons ", attempt=2))  # the retry retraces what is shown: nothing changes
        view.text(delta("wait for fish.", attempt=2))
        view.text(delta("and wait", attempt=1))  # the abandoned attempt, still writing: ignored
        view.text(delta("Grey herons ", attempt=2, take=2))  # a re-ask with other words
        view.finish(Reply(turn=1, text="Grey herons wait."))
    assert tty.screen() == "atelier: Grey herons wait.\n" and tty.getvalue().count(RESTORE_AND_CLEAR) == 1
    assert pipe.getvalue() == "atelier: Herons wait for fish.\nGrey herons wait.\n", "a pipe: the final answer in full"


def test_a_string_field_is_read_from_json_cut_anywhere():
    reply = json.dumps({"cited": [1], "answer": 'She said "hi"\n\\ and 😀 éclat', "more": "x"})
    texts = [partial_field(reply[:cut], "answer") for cut in range(len(reply) + 1)]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    assert texts[-1] == json.loads(reply)["answer"] and partial_field('{"cited": [1', "answer") == ""


def read_stdout(process: subprocess.Popen, into: list[tuple[float, str]]) -> None:
    while chunk := process.stdout.read1(4096).decode():  # type: ignore[union-attr]
        into.append((time.monotonic(), chunk))


class HeldAnswer(OfflineProvider):
    """The offline provider at 1 s a call; while `hold` is set, an answer stops after its first words until
    the test lets it go on (a reply caught mid-stream, whatever the machine's load)."""

    def __init__(self) -> None:
        super().__init__(latency_s=1.0)
        self.hold = False
        self.midway = asyncio.Event()
        self.release = asyncio.Event()

    async def _write_out(self, text: str, stream: TextStream) -> None:
        if not (self.hold and stream.field == "answer"):
            return await super()._write_out(text, stream)
        head, tail = text.split(" ", 2)[:2], text.split(" ", 2)[2:]
        await super()._write_out(" ".join(head) + " ", stream)
        self.midway.set()
        await self.release.wait()
        await super()._write_out(" ".join(tail), stream)


@pytest.mark.slow
async def test_chat_prints_the_answer_as_it_arrives_and_a_killed_cli_attached_again_shows_it_once(dev_env, tmp_path):
    """`chat --message` streams (offline provider, 1 s a call); a second CLI killed mid-reply, then `chat
    --id` attached to the same conversation, shows that turn from its start: nothing doubled, nothing lost."""
    env = atelier_env(tmp_path, address_of(dev_env))
    provider = HeldAnswer()
    store = LocalStore(tmp_path / "data" / "artifacts")
    async with running_workers(dev_env.client, GuardedProvider(provider, None), store):
        command = [sys.executable, "-m", "starter", "chat", "--id", "streamed"]
        first: list[tuple[float, str]] = []
        chat = spawn(
            [*command, "--message", "Tell me about the lighthouse keeper who collects sea glass."],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        await asyncio.to_thread(read_stdout, chat, first)
        chat.wait(timeout=30)
        handle = dev_env.client.get_workflow_handle("streamed")
        history = await handle.query(ConversationWorkflow.history)
        text = "".join(chunk for _, chunk in first)
        assert chat.returncode == 0 and text == f"atelier: {history.recent[0].reply}\n", text
        assert len(first) >= 3 and first[-1][0] - first[0][0] >= 0.5, "the answer came in pieces, over time"

        provider.hold = True
        killed: list[tuple[float, str]] = []
        second = spawn(
            [*command, "--message", "And what does she do with the glass?"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        reader = asyncio.ensure_future(asyncio.to_thread(read_stdout, second, killed))
        await asyncio.wait_for(provider.midway.wait(), 60)

        async def first_words() -> bool:
            assert second.poll() is None, "the CLI ended before it showed the answer's first words"
            return len("".join(chunk for _, chunk in killed)) > len("atelier: ")

        await eventually(first_words, 30, "the answer's first words on the CLI", every=0.02)
        second.send_signal(signal.SIGKILL)
        await reader
        attached = spawn(
            command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        said = await asyncio.to_thread(attached.stderr.readline)  # type: ignore[union-attr]
        provider.release.set()  # the answer goes on only once the new CLI is attached
        out, err = await asyncio.to_thread(attached.communicate, "/quit\n", 60)
        history = await handle.query(ConversationWorkflow.history)
    reply = history.recent[-1].reply
    assert attached.returncode == 0, err
    assert said.startswith("(turn 2 is being answered"), said + err
    assert out.count("atelier: ") == 1 and f"atelier: {reply}\n" in out, out
    assert reply.startswith("".join(chunk for _, chunk in killed).removeprefix("atelier: ")), "the same text went on"


@pytest.mark.slow
async def test_a_worker_killed_mid_stream_the_reply_completes_and_nothing_is_doubled(dev_env, tmp_path):
    """The text worker is SIGKILLed while the answer streams; another takes the phase over (heartbeat
    timeout): its attempt writes the same text again, which the screen does not repeat, and goes on."""
    env = atelier_env(tmp_path, address_of(dev_env), ATELIER_OFFLINE_LATENCY_S="2.5")
    store = LocalStore(tmp_path / "data" / "artifacts")
    in_process = [WORKFLOW_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE, SCORING_QUEUE]
    text_worker = start_worker(env, tmp_path / "text-1.log", (TEXT_QUEUE,))
    replacement = None
    try:
        async with running_workers(dev_env.client, GuardedProvider(OfflineProvider(), None), store, in_process):
            handle = await start(dev_env.client)
            out = Terminal()
            asking = asyncio.ensure_future(say(dev_env.client, handle, "Why do herons stand so still?", out))

            async def streaming() -> bool:
                assert not asking.done(), "the reply finished before the worker could be killed"
                return "atelier: " in out.getvalue() and len(out.getvalue()) >= len("atelier: ") + 5

            await eventually(streaming, 60, "the answer to start streaming", every=0.02)
            text_worker.send_signal(signal.SIGKILL)
            text_worker.wait(timeout=10)
            replacement = start_worker(env, tmp_path / "text-2.log", (TEXT_QUEUE,))
            reply = await asyncio.wait_for(asking, 90)
            history = await handle.query(ConversationWorkflow.history)
    finally:
        for worker in (text_worker, replacement):
            if worker and worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
    assert out.screen() == f"atelier: {reply.text}\n" and RESTORE_AND_CLEAR not in out.getvalue(), out.getvalue()
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(out.writes)]
    assert max(gaps) >= 5, "the answer paused while another worker took the phase over (heartbeat timeout)"
    assert history.turns_total == 1 and history.recent[0].reply == reply.text, "the turn happened once"


async def test_a_subscriber_of_a_turn_two_turns_back_is_told_it_is_gone(time_env, tmp_path):
    async with running_workers(time_env.client, GuardedProvider(OfflineProvider(), None), LocalStore(tmp_path)):
        handle = await start(time_env.client)
        for i in range(3):
            await say(time_env.client, handle, f"Message {i}", io.StringIO())
        found = await stream_offset(time_env.client, handle)
        assert found
        shown = io.StringIO()
        latest = await asyncio.wait_for(follow_turn(found[0], AnswerView(shown), 0, turn=3), 10)
        gone = await asyncio.wait_for(follow_turn(found[0], AnswerView(io.StringIO()), 0, turn=1), 10)
    assert latest is not None and latest.turn == 3 and shown.getvalue().startswith("atelier: ")
    assert gone is None, "turn 1 was truncated: only the last two turns stay in the stream"

"""PostChain conversations on real Temporal servers: retrieval, ordering, continue-as-new, crashes, degradation."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.service import RPCError

from activities.knowledge import chunk_text
from activities.providers.call_log import read_log
from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore, artifact_key
from models.conversation import ConversationConfig, ConversationStart, History, IngestDoc, IngestJob, Phase
from models.settings import STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE
from starter.chat_cmd import ask
from tests.conftest import (
    ROOT,
    address_of,
    atelier_env,
    eventually,
    run_cli,
    running_workers,
    spawn,
    start_worker,
    wait_for,
)
from workers.registry import build_workers
from workflows.conversation import ConversationWorkflow
from workflows.knowledge import KnowledgeIngestWorkflow

BEES = """# Keeping bees in the city

Urban beekeeping works best with calm colonies and a water source close to the hive.

## Winter

In winter honeybees cluster tightly around the queen and shiver their flight muscles to keep the centre
of the cluster warm. A colony needs about twenty kilograms of honey to survive a cold winter.

## Sourdough

Sourdough bread rises thanks to wild yeast and lactic acid bacteria in a starter that is fed daily.
"""
FACT = "I keep three beehives on my roof in Lisbon."
QUESTION = "How do my bees survive the winter on the roof?"


async def add_knowledge(client, store: LocalStore) -> None:
    ref = await store.put("kb/sources/bees.md", BEES.encode(), "text/markdown")
    job = IngestJob(docs=[IngestDoc(name="bees.md", source=ref)])
    [summary] = await client.execute_workflow(
        KnowledgeIngestWorkflow.run, job, id=f"kb-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
    )
    assert summary.chunks == 3 and summary.doc_id.startswith("bees-")


async def start(client, **config):
    return await client.start_workflow(
        ConversationWorkflow.run,
        ConversationStart(config=ConversationConfig(**config)),
        id=f"conv-{uuid.uuid4()}",
        task_queue=WORKFLOW_QUEUE,
    )


def test_chunks_follow_headings_and_paragraphs():
    chunks = chunk_text(BEES)
    assert [c.splitlines()[0] for c in chunks] == ["# Keeping bees in the city", "## Winter", "## Sourdough"]
    long = chunk_text("A sentence that goes on. " * 100, limit=200)
    assert all(len(c) <= 200 for c in long) and all(c.endswith(".") for c in long)


async def test_later_answer_retrieves_an_earlier_turn_and_a_knowledge_passage(module_dev_env, tmp_path):
    store = LocalStore(tmp_path)
    async with running_workers(module_dev_env.client, GuardedProvider(OfflineProvider(), None), store):
        await add_knowledge(module_dev_env.client, store)
        handle = await start(module_dev_env.client)
        first = await handle.execute_update(ConversationWorkflow.ask, FACT)
        second = await handle.execute_update(ConversationWorkflow.ask, QUESTION)
        observations = await handle.query(ConversationWorkflow.observations)
        history = await handle.query(ConversationWorkflow.history)
    assert first.turn == 1 and not first.citations
    assert [p.phase for p in second.phases] == list(Phase)  # A, E, I, O, U, Y in order
    sources = {(c.source, c.ref.split("#")[0]) for c in second.citations}
    assert ("turn", "turn 1") in sources, "the earlier turn is retrieved and cited"
    winter = next(c for c in second.citations if c.source == "kb" and "winter" in c.text.lower())
    assert winter.title == "bees.md" and "[1]" in second.text and "Lisbon" in second.text
    assert {"beehives", "lisbon", "winter"} <= set(observations.concepts)
    assert history.turns_total == 2 and [t.number for t in history.recent] == [1, 2]
    assert history.usage.models["offline"].calls == 10, "five model phases per turn"


async def test_messages_are_processed_one_at_a_time_in_arrival_order(module_dev_env, tmp_path):
    async with running_workers(module_dev_env.client, GuardedProvider(OfflineProvider(), None), LocalStore(tmp_path)):
        handle = await start(module_dev_env.client)
        texts = [f"Note number {i}: the {word} is blue." for i, word in enumerate(["sky", "sea", "door", "car", "ink"])]
        updates = [
            await handle.start_update(ConversationWorkflow.ask, text, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
            for text in texts
        ]
        await handle.signal(ConversationWorkflow.tell, "A signal, sent last.")
        replies = [await u.result() for u in updates]
        print("replied", flush=True)  # (concurrent result polls stall the time-skipping server)

        async def six_turns() -> History | None:
            history = await handle.query(ConversationWorkflow.history)
            return history if history and history.turns_total == 6 else None

        history = await eventually(six_turns, 30, "the told message's turn")
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(ConversationWorkflow.ask, "   ")  # rejected by the validator
        assert (await handle.query(ConversationWorkflow.history)).turns_total == 6, "and never entered the mailbox"
    assert [r.turn for r in replies] == [1, 2, 3, 4, 5]
    turns = history.recent
    assert [t.user for t in turns] == [*texts, "A signal, sent last."]
    assert all(a.finished_at <= b.started_at for a, b in itertools.pairwise(turns)), "no interleaving"


async def test_continue_as_new_keeps_state_and_memory(module_dev_env, tmp_path):
    provider = GuardedProvider(OfflineProvider(), tmp_path / "calls.jsonl")
    async with running_workers(module_dev_env.client, provider, LocalStore(tmp_path)):
        handle = await start(module_dev_env.client, continue_after_turns=2, keep_recent=2)
        first_run = (await handle.describe()).run_id
        await ask(handle, FACT)
        for text in ["The weather is mild today.", "I also grow tomatoes.", "My cat is called Pixel."]:
            await ask(handle, text)
        later = await ask(handle, "Where are my beehives?")
        history = await handle.query(ConversationWorkflow.history)
        observations = await handle.query(ConversationWorkflow.observations)
        latest_run = (await handle.describe()).run_id
    assert latest_run != first_run and history.runs == 3, "two continue-as-new so far"
    assert history.turns_total == 5 and [t.number for t in history.recent] == [4, 5]
    assert len(history.summary) == 3 and history.summary[0].startswith("turn 1: user: I keep three beehives")
    assert {"beehives", "tomatoes", "pixel"} <= set(observations.concepts), "observations survive"
    assert "turn 1" in {c.ref for c in later.citations} and "Lisbon" in later.text, "turn 1 is still retrievable"
    assert history.usage.models["offline"].calls == len(read_log(tmp_path / "calls.jsonl")), "usage carried across runs"


async def test_steady_traffic_still_continues_as_new_and_loses_no_message(dev_env, tmp_path):
    """Messages keep arriving, so the inbox is never empty: the run still hands over at its bound, and
    the queued and newly told messages are answered once each, in the order they were sent."""
    store = LocalStore(tmp_path)
    texts = [
        f"Message {i}: the {w} is green."
        for i, w in enumerate(["tree", "frog", "lamp", "door", "kite", "moss", "fern", "jade"])
    ]
    async with running_workers(dev_env.client, GuardedProvider(OfflineProvider(), None), store):
        handle = await start(dev_env.client, continue_after_turns=3, keep_recent=2)
        for text in texts:
            await handle.signal(ConversationWorkflow.tell, text)

        async def all_answered() -> History | None:
            try:  # a query that lands while a run hands over to the next may time out: ask again
                history = await handle.query(ConversationWorkflow.history, rpc_timeout=timedelta(seconds=2))
            except RPCError:
                return None
            return history if history and history.turns_total == len(texts) else None

        history = await eventually(all_answered, 30, f"all {len(texts)} messages to be answered")
        last = await ask(handle, "And what colour is the frog?")
    archived = [json.loads(await store.read(k)) for k in await store.keys(artifact_key("conversations", handle.id))]
    users = [t["user"] for t in sorted(archived, key=lambda t: t["number"])]
    assert users == [*texts, "And what colour is the frog?"], "each message once, in order"
    assert last.turn == 9
    assert history.runs == 3, "continued as new at every bound of 3 turns although messages were queued"


async def test_end_during_a_hand_over_answers_every_message_first(module_dev_env, tmp_path):
    """Five tells and `end` before the third turn's hand-over: the carried messages are answered, then it closes."""
    texts = [f"Note {i}: the {w} is red." for i, w in enumerate(["kite", "boat", "roof", "cart", "bell"])]
    async with running_workers(module_dev_env.client, GuardedProvider(OfflineProvider(), None), LocalStore(tmp_path)):
        handle = await start(module_dev_env.client, continue_after_turns=3, keep_recent=5)
        for text in texts:
            await handle.signal(ConversationWorkflow.tell, text)
        await handle.signal(ConversationWorkflow.end)
        history = await handle.result()
    assert history.turns_total == 5 and [t.user for t in history.recent] == texts, "none dropped at the end"
    assert history.runs == 1


async def test_experience_down_degrades_instead_of_failing(module_dev_env, tmp_path):
    """No scoring worker: Experience times out; the answer comes without retrieval and says so."""
    provider, store = GuardedProvider(OfflineProvider(), None), LocalStore(tmp_path)
    workers = build_workers(module_dev_env.client, [WORKFLOW_QUEUE, TEXT_QUEUE, STORAGE_QUEUE], provider, store)
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        handle = await start(module_dev_env.client, retrieval_wait_s=2)
        reply = await handle.execute_update(ConversationWorkflow.ask, QUESTION)
        again = await handle.execute_update(ConversationWorkflow.ask, "And in summer?")
    assert "answered without retrieval" in reply.text and reply.citations == []
    assert any("experience unavailable" in d for d in reply.degraded)
    experience = next(p for p in reply.phases if p.phase == Phase.EXPERIENCE)
    assert experience.degraded and not any(p.phase == Phase.UNDERSTANDING and p.degraded for p in reply.phases)
    assert reply.phases[-1].phase == Phase.YIELD and again.turn == 2, "the conversation goes on"


@pytest.mark.slow
async def test_worker_killed_mid_turn_the_turn_completes_once(dev_env, tmp_path):
    env = atelier_env(tmp_path, address_of(dev_env), ATELIER_OFFLINE_LATENCY_S="0.6")
    first = start_worker(env, tmp_path / "worker-1.log")
    assert run_cli("chat", "--id", "crashy", "--message", FACT, env=env).returncode == 0
    asking = spawn(
        [sys.executable, "-m", "starter", "chat", "--id", "crashy", "--message", QUESTION, "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    handle = dev_env.client.get_workflow_handle("crashy")

    async def phases_done() -> int:
        try:
            progress = await handle.query(ConversationWorkflow.progress)
        except RPCError:  # the worker is between polls
            return 0
        return len(progress.phases) if progress.turn == 2 else 0

    for _ in range(300):
        if await phases_done() >= 2:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("turn 2 never got going")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    second = start_worker(env, tmp_path / "worker-2.log")
    try:
        out, err = await asyncio.to_thread(asking.communicate, timeout=120)
        history = await handle.query(ConversationWorkflow.history)
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert asking.returncode == 0, err
    reply = json.loads(out)
    assert reply["turn"] == 2 and any(c["ref"] == "turn 1" for c in reply["citations"])
    assert [t.user for t in history.recent] == [FACT, QUESTION], "the turn happened exactly once"
    log = read_log(Path(env["ATELIER_DATA_DIR"]) / "logs" / "provider-calls.jsonl")
    yields = [e for e in log if e["call"] == "structured:YieldOutput" and e.get("ok")]
    assert len(yields) == 2, "one answer per turn"
    assert "action" in err and "yield" in err, "the CLI showed the phases"


@pytest.mark.slow
@pytest.mark.timeout(300)  # CLI processes one after another: over 150 s with every core busy
async def test_chat_cli_repl_history_kb_and_bad_input(dev_env, tmp_path):
    env = atelier_env(tmp_path, address_of(dev_env))
    doc = tmp_path / "bees.md"
    doc.write_text(BEES)
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        added = run_cli("kb", "add", str(doc), env=env, timeout=180)
        assert added.returncode == 0, added.stderr
        [summary] = json.loads(added.stdout)
        listed = json.loads(run_cli("kb", "list", env=env).stdout)
        assert listed == [{"doc_id": summary["doc_id"], "name": "bees.md", "chunks": 3}]
        talk = subprocess.run(
            [sys.executable, "-m", "starter", "chat", "--id", "repl"],
            input=f"{FACT}\n{QUESTION}\n/history\n/quit\n",
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert talk.returncode == 0, talk.stderr
        assert "atelier: Got it" in talk.stdout and "bees.md" in talk.stdout and "[2] you: " + QUESTION in talk.stdout
        assert talk.stderr.count("yield") == 2 and "experience" in talk.stderr
        history = json.loads(run_cli("chat", "--id", "repl", "--history", "--json", env=env).stdout)
        assert [t["number"] for t in history] == [1, 2]
        removed = run_cli("kb", "remove", summary["doc_id"], env=env)
        assert removed.returncode == 0 and json.loads(run_cli("kb", "list", env=env).stdout) == []
        assert run_cli("chat", "--id", "repl", "--end", env=env).returncode == 0
        wait_for(lambda: "completed" in run_cli("status", "repl", env=env).stdout, 30, "the conversation to end")
        ended = run_cli("chat", "--id", "repl", "--message", "hello?", env=env)
        assert ended.returncode == 2 and "has ended" in ended.stderr
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    for args, message in [
        (["chat", "--message", "   "], "error: the message is empty"),
        (["chat", "--message", "bell \x07 rings"], "error: text: contains a control character (U+0007)"),
        (["chat", "--history"], "error: --history needs --id CONVERSATION"),
        (["chat", "--id", "nobody-here", "--history"], "error: no run with id 'nobody-here'"),
        (["kb", "add", str(tmp_path / "missing.md")], "error: "),
        (["kb", "add", str(binary)], "error: "),
        (["kb", "remove", "no-such-doc"], "error: no document with id no-such-doc"),
    ]:
        done = run_cli(*args, env=env)
        assert done.returncode == 2 and done.stderr.startswith(message), (args, done.stderr)
        assert len(done.stderr.splitlines()) == 1 and done.stdout == ""
    assert not list((Path(env["ATELIER_DATA_DIR"]) / "artifacts").glob(artifact_key("kb", "sources", "*image*")))

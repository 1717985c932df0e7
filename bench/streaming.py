"""Streaming benchmark: 20 conversation turns with the offline provider at 1 s a model call, on a dev server.

Streamed, `chat`'s way (a Workflow Stream subscriber, the answer shown as it is written), and not streamed
(the conversation's `stream` off, the reply from the `ask` update alone). Printed side by side: time from
Enter to the first answer text and, beside it, the answering call's first token (both on this machine's
clock, the workers run in this process), the turn time, history events and bytes per turn.
`python -m bench.streaming [turns]`.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.client import Client

from activities.providers.base import TextStream
from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore
from models.conversation import ConversationConfig, ConversationStart
from models.settings import WORKFLOW_QUEUE
from starter.chat_cmd import ask
from starter.chat_stream import AnswerView, stream_offset, streamed_send
from tests.conftest import each_run, running_workers, start_dev_server
from workflows.conversation import ConversationWorkflow

LATENCY_S = 1.0


class TimedOffline(OfflineProvider):
    """The offline provider, noting when each answer's first token is written."""

    def __init__(self) -> None:
        super().__init__(latency_s=LATENCY_S)
        self.first_tokens: list[float] = []

    async def structured(self, schema, instructions, prompt, context=None, max_cost_usd=None, notes=None, stream=None):
        if stream is None or schema.__name__ != "YieldOutput":
            return await super().structured(schema, instructions, prompt, context, max_cost_usd, notes, stream)
        first: list[float] = []

        def send(text: str) -> None:
            if not first:
                first.append(time.monotonic())
                self.first_tokens.append(first[0])
            stream.send(text)

        timed = TextStream(stream.field, send, stream.restart)
        return await super().structured(schema, instructions, prompt, context, max_cost_usd, notes, timed)


class Clocked(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.first_text: float | None = None

    def write(self, text: str) -> int:
        if self.first_text is None and text.strip() and not text.startswith("atelier: "):
            self.first_text = time.monotonic()
        return super().write(text)


async def history_size(client: Client, workflow_id: str, first_run: str) -> tuple[int, int]:
    """Events and JSON bytes over every run of the conversation."""
    events = size = 0
    async for history in each_run(client, workflow_id, first_run):
        events, size = events + len(history.events), size + len(history.to_json())
    return events, size


async def conversation(client: Client, provider: TimedOffline, turns: int, streamed: bool) -> dict[str, float]:
    start = ConversationStart(config=ConversationConfig(stream=streamed))
    workflow_id = f"bench-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(ConversationWorkflow.run, start, id=workflow_id, task_queue=WORKFLOW_QUEUE)
    first_run = (await handle.describe()).run_id or ""
    lags, to_text, turn_times = [], [], []
    for n in range(turns):
        text = f"Message {n}: tell me about the lighthouse keeper who collects sea glass."
        entered = time.monotonic()
        if streamed:
            found = await stream_offset(client, handle)
            assert found is not None
            out = Clocked()
            await streamed_send(*found, lambda update_id, t=text: ask(handle, t, update_id=update_id), AnswerView(out))
            assert out.first_text is not None
            lags.append(out.first_text - provider.first_tokens[-1])
            to_text.append(out.first_text - entered)
        else:
            await ask(handle, text)
        turn_times.append(time.monotonic() - entered)
    await handle.signal(ConversationWorkflow.end)
    await handle.result()
    events, size = await history_size(client, workflow_id, first_run)
    figures = {"turn_s": statistics.mean(turn_times), "events": events / turns, "kib": size / turns / 1024}
    if lags:
        figures |= {"to_text_s": statistics.median(to_text), "lag_s": statistics.median(lags), "lag_max": max(lags)}
    return figures


async def main(turns: int) -> None:
    env = await start_dev_server()
    provider = TimedOffline()
    with tempfile.TemporaryDirectory() as tmp:
        async with running_workers(env.client, GuardedProvider(provider, None), LocalStore(Path(tmp))):
            plain = await conversation(env.client, provider, turns, streamed=False)
            streamed = await conversation(env.client, provider, turns, streamed=True)
    await env.shutdown()
    print(f"{turns} turns, offline provider at {LATENCY_S:.0f} s a call, dev server, workers in this process")
    print(f"{'':>13} {'turn s':>7} {'events/turn':>12} {'KiB/turn':>9}")
    for name, row in (("not streamed", plain), ("streamed", streamed)):
        print(f"{name:>13} {row['turn_s']:7.2f} {row['events']:12.0f} {row['kib']:9.1f}")
    print(f"turn time streamed ÷ not: {streamed['turn_s'] / plain['turn_s']:.3f} (target ≤ 1.1)")
    print(
        f"Enter → first answer text: {streamed['to_text_s']:.2f} s (median); after the answering call's first "
        f"token: {streamed['lag_s']:.3f} s median, {streamed['lag_max']:.3f} s max (target ≤ 0.5)"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))

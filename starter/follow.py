"""Following a run from the CLI: its progress line on stderr until the result, and a note when no worker
answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle

from starter.common import stderr
from starter.waiting import WaitingNotes


async def follow(
    client: Client, handle: WorkflowHandle, progress_line: Callable[[WorkflowHandle], Awaitable[str | None]]
) -> Any:
    """Wait for a run's result, printing its progress line (and any rate-limit wait) on stderr whenever it
    changes."""
    result = asyncio.ensure_future(handle.result())
    last = ""
    silent = WorkerSilence()
    notes = WaitingNotes(client)
    with stderr.status("waiting for the run…") as spinner:
        while not result.done():
            line = await progress_line(handle)
            silent.observe(line is not None)
            if line is not None and (waits := await notes.current()):
                line = f"{line} · {'; '.join(waits)}"
            if line is not None and line != last:
                stderr.print(f"[dim]{handle.id}[/] {line}")
                spinner.update(line)
                last = line
            await asyncio.wait([result], timeout=0.3)
    return result.result()


class WorkerSilence:
    """Says once, on stderr, when no worker has answered the progress query for a while."""

    def __init__(self, after_s: float = 6.0) -> None:
        self.after_s = after_s
        self.since: float | None = None
        self.said = False

    def observe(self, answered: bool) -> None:
        now = time.monotonic()
        if answered:
            self.since = None
            return
        self.since = self.since or now
        if not self.said and now - self.since >= self.after_s:
            stderr.print(
                "[yellow]no worker is answering: is `python -m workers` (or `python -m starter up`) running? "
                "The run waits in Temporal until one is.[/]"
            )
            self.said = True

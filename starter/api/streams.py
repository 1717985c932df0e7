"""This API process's open event streams: how many each tenant and the process may hold (beyond: 429), and
one watcher per run that lists the run's recorded batches for all of that run's streams. The watcher polls
the store with backoff while the run is quiet (0.25 s → 2 s) and wakes the streams with an asyncio event
when new events appear; it stops a few seconds after its last stream leaves."""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import time
from dataclasses import dataclass, field

from kit.storage import ArtifactStore, events_prefix
from models.api import TERMINAL_EVENTS
from models.events import Batch, RunEvent
from starter.api.errors import TooMany

POLL_MIN_S = 0.25  # right after new events (a busy run writes a batch every look)
POLL_MAX_S = 2.0  # a quiet run's (its look activity records at most one batch per wait)
LINGER_S = 5.0  # an idle watcher waits this long for a stream that resumes (EventSource reconnects in 1 s)
log = logging.getLogger("atelier.api")


class RunWatch:
    """One run's recorded events, read once for every stream of the run in this process."""

    def __init__(self, store: ArtifactStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.events: list[RunEvent] = []  # every event recorded so far, in order
        self.streams = 0
        self.looked = asyncio.Event()  # the first look is done
        self.news = asyncio.Event()  # set (and replaced) when events are added
        self._read: set[str] = set()
        self._left_at = time.monotonic()

    @property
    def terminal_seq(self) -> int | None:
        """The terminal event's sequence number, once it is read."""
        last = self.events[-1] if self.events else None
        return last.seq if last and last.type in TERMINAL_EVENTS else None

    def index_after(self, seq: int) -> int:
        """Where the events after `seq` start in `events`."""
        return bisect.bisect_right(self.events, seq, key=lambda event: event.seq)

    def join(self) -> None:
        self.streams += 1

    def leave(self) -> None:
        self.streams -= 1
        self._left_at = time.monotonic()

    async def look(self) -> bool:
        """Read the batches recorded since the last look; True when they added events."""
        prefix = events_prefix(self.run_id) + "/"
        fresh = [k for k in await self.store.keys(events_prefix(self.run_id)) if k not in self._read]
        added = False
        for key in sorted(k for k in fresh if k.startswith(prefix)):
            batch = Batch.model_validate_json(await self.store.read(key))
            self._read.add(key)
            last = self.events[-1].seq if self.events else 0
            new = [event for event in batch.events if event.seq > last]
            self.events.extend(new)
            added = added or bool(new)
        if added:
            self.news.set()
            self.news = asyncio.Event()
        return added

    async def run(self) -> None:
        """Look until the terminal event is read (on while a stream waits past it: an experiment started again
        after its end goes on), faster while events come; end once nobody has listened for LINGER_S."""
        pause = POLL_MIN_S
        while self.streams or time.monotonic() - self._left_at < LINGER_S:
            if self.terminal_seq is None or self.streams:  # a stream past the end waits for a rerun's events
                try:
                    pause = POLL_MIN_S if await self.look() else min(pause * 2, POLL_MAX_S)
                except Exception:  # the store is unreachable this time: the streams keep waiting (and alive)
                    log.warning("listing the events of %s failed", self.run_id, exc_info=True)
                    pause = POLL_MAX_S
            self.looked.set()
            await asyncio.sleep(pause)


@dataclass(eq=False)  # a slot is itself: two opened at once by one tenant are two
class Slot:
    """One open stream: its tenant, when it opened, and the run it watches (once it has one)."""

    tenant: str
    opened: float = field(default_factory=time.monotonic)
    watch: RunWatch | None = None


class Streams:
    """The process's open streams and its watchers. `open` refuses (429) a tenant at `per_tenant` streams
    or the process at `per_process`; `close` frees the slot, however the stream ended."""

    def __init__(self, store: ArtifactStore, per_tenant: int, per_process: int, max_s: float) -> None:
        self.store, self.per_tenant, self.per_process, self.max_s = store, per_tenant, per_process, max_s
        self.open_slots: dict[str, list[Slot]] = {}  # tenant → its open streams
        self.watches: dict[str, RunWatch] = {}  # run id → its watcher
        self._tasks: set[asyncio.Task] = set()

    def count(self) -> int:
        return sum(len(slots) for slots in self.open_slots.values())

    def open(self, tenant: str) -> Slot:
        mine = self.open_slots.get(tenant, [])
        if len(mine) >= self.per_tenant:
            self._refuse(mine, f"this tenant has {len(mine)} event streams open (the most it may)")
        if self.count() >= self.per_process:
            every = [slot for slots in self.open_slots.values() for slot in slots]
            self._refuse(every, "this API process serves as many event streams as it may")
        slot = Slot(tenant)
        self.open_slots.setdefault(tenant, []).append(slot)
        return slot

    def _refuse(self, slots: list[Slot], detail: str) -> None:
        """429: try again when the oldest of these streams reaches its maximum life (it ends by then)."""
        wait = min(slot.opened for slot in slots) + self.max_s - time.monotonic()
        raise TooMany("too many event streams", detail, max(1, math.ceil(wait)))

    async def watch(self, slot: Slot, run_id: str) -> RunWatch:
        """The run's watcher (started when the run has none), joined by this stream, after its first look."""
        watch = self.watches.get(run_id)
        if watch is None:
            watch = self.watches[run_id] = RunWatch(self.store, run_id)
            task = asyncio.create_task(self._watching(watch), name=f"events of {run_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        watch.join()
        slot.watch = watch
        await watch.looked.wait()
        return watch

    async def _watching(self, watch: RunWatch) -> None:
        try:
            await watch.run()
        finally:
            if self.watches.get(watch.run_id) is watch:
                del self.watches[watch.run_id]

    def close(self, slot: Slot) -> None:
        """Free the stream's slot and leave its watcher (once; a second call does nothing)."""
        slots = self.open_slots.get(slot.tenant, [])
        if slot not in slots:
            return
        slots.remove(slot)
        if not slots:
            del self.open_slots[slot.tenant]
        if slot.watch is not None:
            slot.watch.leave()

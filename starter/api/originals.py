"""Whole artifacts read for an answer (`GET /v1/artifacts/{key}` without `?width=`): a few at a time in each
API process, since each is held in memory while it is sent, and each key's ETag kept (artifact keys are
written once), so a conditional request that matches is answered without reading anything."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from cachetools import LRUCache

AT_ONCE = 8  # originals in memory at once: 8 x a 20 MB upload at most
KEPT_ETAGS = 10_000


class Originals:
    def __init__(self, at_once: int = AT_ONCE) -> None:
        self.turns = asyncio.Semaphore(at_once)
        self.etags: LRUCache[str, str] = LRUCache(maxsize=KEPT_ETAGS)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """One read at a time of `AT_ONCE`: the rest wait their turn (holding nothing meanwhile)."""
        async with self.turns:
            yield

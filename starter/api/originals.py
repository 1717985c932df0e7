"""Whole artifacts read for an answer (`GET /v1/artifacts/{key}` without `?width=`): a few at a time in each
API process, since each is held in memory while it is sent, and each key's ETag kept (artifact keys are
written once), so a conditional request that matches is answered without reading anything."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from cachetools import LRUCache

AT_ONCE = 8  # originals in memory at once: 8 x a 20 MB upload at most
KEPT_ETAGS = 10_000


@dataclass
class Originals:
    reads: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(AT_ONCE))  # the rest wait
    etags: LRUCache[str, str] = field(default_factory=lambda: LRUCache(maxsize=KEPT_ETAGS))

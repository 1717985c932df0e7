"""Stored JSON artifacts parsed once per worker and shared by the activities that read the same one: every batch of
a life's tick reads the tick's cast, feeds, memories and state, so a 1,000-character tick (30 batches) parses
each once instead of once a batch (O(characters) per tick, not O(characters x batches)).

A reference names its content (key and sha256: `kit.storage.load` checks it), so a parsed artifact never goes
stale; the few latest are kept. Callers only read what they get (it is shared)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import TypeVar

from pydantic import BaseModel

from kit.storage import ArtifactStore, load
from models.artifacts import ArtifactRef

M = TypeVar("M", bound=BaseModel)
KEPT = 16  # parsed artifacts kept: a tick's cast, feeds, memories and state, with room for a second life


class Parsed:
    def __init__(self, store: ArtifactStore, kept: int = KEPT) -> None:
        self.store = store
        self.kept = kept
        self._found: OrderedDict[tuple[str, str, type], asyncio.Future[BaseModel]] = OrderedDict()

    async def get(self, ref: ArtifactRef, model: type[M]) -> M:
        """The artifact `ref` names, parsed as `model`: read and parsed by the first caller, awaited by those
        that ask meanwhile; a failure is not kept (the next caller reads it again)."""
        key = (ref.key, ref.sha256, model)
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = asyncio.ensure_future(self._parse(ref, model))
            while len(self._found) > self.kept:
                self._found.popitem(last=False)
        else:
            self._found.move_to_end(key)
        try:
            return await asyncio.shield(found)  # type: ignore[return-value]
        except Exception:
            if self._found.get(key) is found:
                del self._found[key]
            raise

    async def _parse(self, ref: ArtifactRef, model: type[M]) -> M:
        return model.model_validate_json(await load(self.store, ref))

"""`activities.parsed`: a stored artifact read by many batches at once is read and parsed once; another content
under the same key is parsed anew; a failed read is not kept."""

from __future__ import annotations

import asyncio

import pytest

from activities.parsed import Parsed
from kit.storage import ArtifactIntegrityError, LocalStore
from models.life import Cast, CastMember


class CountingStore(LocalStore):
    def __init__(self, root) -> None:
        super().__init__(root)
        self.reads = 0

    async def read(self, key: str) -> bytes:
        self.reads += 1
        return await super().read(key)


async def test_thirty_batches_reading_one_cast_read_it_once(tmp_path):
    store = CountingStore(tmp_path)
    cast = Cast(world_id="w", members=[CastMember(username=f"c{i}", display_name="C") for i in range(100)])
    ref = await store.put("lives/l/cast.json", cast.model_dump_json().encode(), "application/json")
    parsed = Parsed(store)
    got = await asyncio.gather(*(parsed.get(ref, Cast) for _ in range(30)))
    assert store.reads == 1 and all(g is got[0] for g in got) and got[0] == cast

    changed = cast.model_copy(update={"world_name": "again"})
    again = await store.put("lives/l/cast.json", changed.model_dump_json().encode(), "application/json")
    assert (await parsed.get(again, Cast)).world_name == "again" and store.reads == 2

    with pytest.raises(ArtifactIntegrityError):  # the old reference no longer matches what is stored
        await parsed.get(ref.model_copy(update={"sha256": "0" * 64}), Cast)
    with pytest.raises(ArtifactIntegrityError):  # asked again: read again, not a kept failure
        await parsed.get(ref.model_copy(update={"sha256": "0" * 64}), Cast)
    assert store.reads == 4

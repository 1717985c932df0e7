"""A picture is paid for once: what the provider sold is kept on the worker's disk until the store has it.

An image activity buys a picture and stores it. When storing fails (the store is down, the worker is
stopped after the provider answered), Temporal retries the activity; without this, the retry would buy the
picture again. `bought_once` spools the purchase (bytes, content type, usage) under the activity's own
identity before storing it, so a retry on the same machine stores the spooled picture instead of asking the
provider, and the purchase's usage is booked once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from temporalio import activity

from activities.heartbeat import earlier_usage
from activities.providers.base import GeneratedBytes
from activities.storage import ArtifactStore, write_atomic
from models.artifacts import ArtifactRef
from models.usage import Metered, Usage


@dataclass(frozen=True)
class Spooled:
    picture: GeneratedBytes
    usage: Usage


class Spool:
    """Purchases not yet stored, one pair of files per activity (an activity's id is unique in its run)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        info = activity.info()
        who = f"{info.workflow_namespace}/{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}/{key}"
        return self.folder / hashlib.sha256(who.encode()).hexdigest()

    def _load(self, path: Path) -> Spooled | None:
        meta = path.with_suffix(".json")
        if not (path.is_file() and meta.is_file()):
            return None
        about = json.loads(meta.read_text())
        picture = GeneratedBytes(path.read_bytes(), about["content_type"], about["response_id"], about["note"])
        return Spooled(picture, Usage.model_validate(about["usage"]))

    def _save(self, path: Path, spooled: Spooled) -> None:
        picture = spooled.picture
        about = {
            "content_type": picture.content_type,
            "response_id": picture.response_id,
            "note": picture.note,
            "usage": json.loads(spooled.usage.model_dump_json()),
        }
        write_atomic(path, picture.data)
        write_atomic(path.with_suffix(".json"), json.dumps(about).encode())  # last: its presence says complete

    def _drop(self, path: Path) -> None:
        for stale in (path.with_suffix(".json"), path):
            stale.unlink(missing_ok=True)

    async def load(self, key: str) -> Spooled | None:
        return await asyncio.to_thread(self._load, self._path(key))

    async def save(self, key: str, spooled: Spooled) -> None:
        await asyncio.to_thread(self._save, self._path(key), spooled)

    async def drop(self, key: str) -> None:
        await asyncio.to_thread(self._drop, self._path(key))


async def bought_once(
    spool: Spool, store: ArtifactStore, key: str, buy: Callable[[], Awaitable[Metered[GeneratedBytes]]]
) -> tuple[Metered[GeneratedBytes], ArtifactRef]:
    """The picture for `key` (bought, or taken from an earlier attempt's spool) with its usage, and where the
    store keeps it. A store failure leaves the spool for the retry."""
    if (kept := await spool.load(key)) is None:
        called = await buy()
        usage = called.usage
        await spool.save(key, Spooled(called.value, usage))
        picture = called.value
    else:
        # the attempt that bought it carried its usage to this one (its heartbeats): booked with this result
        # then; only when that never got through is the spooled usage booked here
        picture, usage = kept.picture, Usage() if earlier_usage().models else kept.usage
    stored = await store.put(key, picture.data, picture.content_type)
    await spool.drop(key)
    return Metered(value=picture, usage=usage), stored


def spool_folder(data_dir: Path) -> Path:
    """Where a worker spools its purchases: under its data dir, private to the worker's user."""
    folder = data_dir / "spool"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder

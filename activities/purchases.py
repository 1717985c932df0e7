"""A picture is paid for once: what the provider sold is kept on the worker's disk until the store has it.

An image activity buys a picture and stores it. When storing fails (the store is down, the worker is
stopped after the provider answered), Temporal retries the activity; without this, the retry would buy the
picture again. `bought_once` spools the purchase (bytes, content type, usage) under the activity's own
identity before storing it, so a retry on the same machine stores the spooled picture instead of asking the
provider, and the purchase's usage is booked once. What no attempt came back for (the activity failed for
good, its run was cancelled) is swept when a worker starts, a week on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from temporalio import activity

from activities.heartbeat import earlier_usage, spent
from activities.providers.base import GeneratedBytes
from kit.files import write_atomic
from kit.storage import ArtifactStore
from models.artifacts import ArtifactRef
from models.usage import Metered, Usage

KEPT_FOR_S = 7 * 24 * 3600  # an activity's retries are long over by then


def calls(usage: Usage) -> int:
    return sum(row.calls for row in usage.models.values())


@dataclass(frozen=True)
class Spooled:
    picture: GeneratedBytes
    usage: Usage  # what the purchase used
    through: int  # the activity's provider calls, all attempts, once it was bought (the attempt's first call)
    model: str | None = None  # the catalog id of the model that made it


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
        return Spooled(picture, Usage.model_validate(about["usage"]), int(about.get("through", 0)), about.get("model"))

    def _save(self, path: Path, spooled: Spooled) -> None:
        picture = spooled.picture
        about = {
            "content_type": picture.content_type,
            "response_id": picture.response_id,
            "note": picture.note,
            "usage": json.loads(spooled.usage.model_dump_json()),
            "through": spooled.through,
            "model": spooled.model,
        }
        write_atomic(path, picture.data)
        write_atomic(path.with_suffix(".json"), json.dumps(about).encode())  # last: its presence says complete

    def _drop(self, path: Path) -> None:
        for stale in (path.with_suffix(".json"), path):
            stale.unlink(missing_ok=True)

    def sweep(self, older_than_s: float = KEPT_FOR_S) -> int:
        """Delete what no attempt came back for (and temp files a dead worker left); how many files went."""
        cutoff, swept = time.time() - older_than_s, 0
        for stale in self.folder.iterdir():
            try:
                if stale.is_file() and stale.stat().st_mtime < cutoff:
                    stale.unlink()
                    swept += 1
            except FileNotFoundError:  # another worker on this data dir swept it first
                pass
        return swept

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
        picture, usage, model = called.value, called.usage, called.model
        await spool.save(key, Spooled(picture, usage, calls(earlier_usage()) + calls(usage), model))
    elif calls(earlier_usage()) >= kept.through:
        # the attempt that bought it carried its usage to this one (its heartbeats): the worker's interceptor
        # books it with this result, or with this attempt's failure
        picture, usage, model = kept.picture, Usage(), kept.model
    else:  # that never got through (the worker died at once): booked from the spool, and carried on
        picture, usage, model = kept.picture, kept.usage, kept.model
        spent(usage)
    stored = await store.put(key, picture.data, picture.content_type)
    await spool.drop(key)
    return Metered(value=picture, usage=usage, model=model), stored


def spool_folder(data_dir: Path) -> Path:
    """Where a worker spools its purchases: under its data dir, private to the worker's user."""
    folder = data_dir / "spool"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def worker_spool(data_dir: Path) -> Spool:
    """The worker's spool, swept of what no attempt came back for."""
    spool = Spool(spool_folder(data_dir))
    spool.sweep()
    return spool

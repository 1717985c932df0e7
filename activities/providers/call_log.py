"""The provider call log: one JSON line per model call, an audit trail of paid calls.

Each line names the call, the workflow and activity that made it, the attempt, how long it took, whether
it succeeded and what it used (tokens, images, cost); the crash tests count calls with it. The file is
size-bounded by the stdlib's `RotatingFileHandler` (past `max_bytes` it moves to `<name>.1`, older ones to
`.2` …, the oldest past `files` dropped). Writes happen in a thread, never on the worker's event loop, and
`write` returns once the line is on disk (the crash tests read it then: a `QueueListener` would return
before).
"""

from __future__ import annotations

import asyncio
import json
import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

MAX_BYTES = 64 * 2**20
FILES = 5


class CallLog:
    def __init__(self, path: Path | None, max_bytes: int = MAX_BYTES, files: int = FILES) -> None:
        self.path = path
        self._handler: RotatingFileHandler | None = None
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            # the current file and files-1 rotated ones (at least one: with none the handler never truncates)
            backups = max(files - 1, 1)
            self._handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, delay=True)
            self._handler.terminator = ""

    async def write(self, entry: dict[str, Any]) -> None:
        """Append one entry, off the event loop; done when it is on disk (the call's caller may read it)."""
        if self.path:
            await asyncio.to_thread(self.append, json.dumps(entry) + "\n")

    def append(self, line: str) -> None:
        assert self._handler
        self._handler.handle(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))


def rotated(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def read_log(path: Path) -> list[dict[str, Any]]:
    """The log's entries, oldest first, rotated files included; a line cut short by a crash is skipped."""
    entries = []
    older = sorted(
        (p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()), key=lambda p: -int(p.suffix[1:])
    )
    for part in [*older, path]:
        for line in part.read_text().splitlines() if part.exists() else []:
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return entries

"""The provider call log: one JSON line per model call, an audit trail of paid calls.

Each line names the call, the workflow and activity that made it, the attempt, how long it took, whether
it succeeded and what it used (tokens, images, cost); the crash tests count calls with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class CallLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, entry: dict[str, Any]) -> None:
        if self.path:
            with self.path.open("a") as log:
                log.write(json.dumps(entry) + "\n")


def read_log(path: Path) -> list[dict[str, Any]]:
    """The log's entries; a line cut short by a crash is skipped."""
    entries = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries

"""Files written whole: a reader sees the old content or the new, never half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read without changing it (other threads may be creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)  # no /proc: a restrictive mask for the instant it takes to read it
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes, *, mode: int | None = None, exclusive: bool = False) -> bool:
    """Write a file so readers see the old content or the new, never half of it.

    The file gets `mode`, or the mode any new file would (0666 less the umask), not the temp file's
    private 0600, so galleries and images can be served or shared. `exclusive`: only if nothing is at
    `path` yet (linked into place); False when something was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), 0o666 & ~current_umask() if mode is None else mode)
        if not exclusive:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)

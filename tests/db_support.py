"""A real PostgreSQL for the database tests (Debian's `postgresql` package, never downloaded): one cluster per
test session in a temporary folder, on a free loopback port, run as an unprivileged user (PostgreSQL refuses
to run as root), and a fresh database in it per test. Where it cannot start, the tests that need it are skipped
with a note saying why (CI installs it: `make tools`). Import the fixtures a test module uses:
`from tests.db_support import database_address, pg_database, postgres  # noqa: F401`."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import free_port

BACKENDS = ["sqlite", "postgresql"]
UNPRIVILEGED = "nobody"  # the user a root test run starts PostgreSQL as


def _binaries() -> Path | None:
    """The newest installed server's bin folder (/usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def _started(binaries: Path, data: Path, as_user: list[str]) -> int:
    """A new cluster in `data`, started on a free loopback port (another, should something take that port
    before the server binds it); the port."""
    folder = data.parent

    def run(*command: object) -> None:
        subprocess.run([*as_user, *map(str, command)], cwd=folder, check=True, capture_output=True, timeout=90)

    run(binaries / "initdb", "-D", data, "-U", "atelier", "--auth=trust", "--no-sync", "-E", "UTF8")
    attempts = 3
    while True:
        attempts -= 1
        port = free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c full_page_writes=off"
        try:
            run(binaries / "pg_ctl", "-D", data, "-l", folder / "server.log", "-o", options, "-w", "-t", "60", "start")
            return port
        except subprocess.CalledProcessError:
            if attempts == 0:
                raise


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """The session's PostgreSQL server: its address without a database (`postgresql://atelier@127.0.0.1:PORT`)."""
    binaries = _binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql, or `make tools`): skipped here")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: PostgreSQL cannot start as root, so it is skipped here")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="atelier-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(UNPRIVILEGED)
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", UNPRIVILEGED, "--"]
    data = folder / "data"
    try:
        port = _started(binaries, data, as_user)
    except (OSError, subprocess.SubprocessError) as exc:
        log = folder / "server.log"
        detail = log.read_text(errors="replace")[-400:] if log.exists() else getattr(exc, "stderr", b"").decode()
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"PostgreSQL could not start here ({exc}: {detail.strip()}): skipped")
    try:
        yield f"postgresql://atelier@127.0.0.1:{port}"
    finally:
        stop = [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(stop, cwd=folder, capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_database(postgres: str) -> Iterator[str]:
    """A new, empty database in the session's server for one test (dropped after it): its address."""
    name = f"atelier_{secrets.token_hex(6)}"
    with psycopg.connect(f"{postgres}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{postgres}/{name}"
    finally:
        with psycopg.connect(f"{postgres}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def database_address(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind in turn: SQLite in the test's data dir, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'atelier.db'}"
    return request.getfixturevalue("pg_database")

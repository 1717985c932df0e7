"""One `Database` per address, opened once per process: its engine and its sessions.

SQLite (the default: a file in the data dir) runs in WAL mode, so readers never wait on a writer, with a busy
timeout for writers that meet each other, and foreign keys on. `writing()` begins with `BEGIN IMMEDIATE` there:
it holds the write lock from its first statement, so a change that reads, then writes, never finds another
process wrote in between. PostgreSQL goes through psycopg 3 (`postgresql://` is read as
`postgresql+psycopg://`), with each change a statement that holds by itself (an atomic UPDATE, an INSERT that
a unique key guards).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_S = 10.0  # a writer waits this long for another's transaction to end
CONNECT_TIMEOUT_S = 10  # PostgreSQL: how long a new connection may take


class DatabaseError(RuntimeError):
    """The database cannot be reached or used: one line naming it (never its password)."""


def parsed(address: str) -> URL:
    url = make_url(address)
    if url.get_backend_name() in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    return url


class Database:
    """The engine for one address and the sessions that read and change it."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.url = parsed(address)
        self.engine = _sqlite_engine(self.url) if self.sqlite else _postgres_engine(self.url)
        self._reads = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(self.engine.execution_options(immediate=True), expire_on_commit=False)

    @property
    def sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def shown(self) -> str:
        """The address as messages give it: no password."""
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._unavailable(), self._reads() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A transaction that commits when the block ends (rolled back on an exception)."""
        with self._unavailable(), self._writes.begin() as session:
            yield session

    @contextmanager
    def changing(self) -> Iterator[Connection]:
        """A connection in a writing transaction (migrations), committed when the block ends."""
        with self._unavailable(), self.engine.execution_options(immediate=True).begin() as connection:
            yield connection

    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise DatabaseError(f"the database {self.shown} cannot be used: {reason}") from exc


_opened: dict[str, Database] = {}
_opening = threading.Lock()


def database(address: str) -> Database:
    """The process's `Database` for `address` (made the first time it is asked for)."""
    with _opening:
        if (found := _opened.get(address)) is None:
            found = _opened[address] = Database(address)
        return found


def _postgres_engine(url: URL) -> Engine:
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_S})

    @event.listens_for(engine, "connect")
    def _connected(connection: Any, _record: Any) -> None:
        connection.isolation_level = None  # the driver begins no transaction of its own: `_begin` does
        cursor = connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # WAL keeps every commit; a power cut may lose the last
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("immediate")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine

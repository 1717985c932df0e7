"""Migrations: this build's revisions (`migrations/versions`, applied with Alembic), the revision a database
is at, and `ready`: the database at this build's newest revision, migrated the first time a process opens it.

Two processes that start at once never migrate together: the upgrade runs in one transaction that first takes
the database's migration lock (PostgreSQL: an advisory lock; SQLite: its write lock, `BEGIN IMMEDIATE`), then
reads the revision again. A database at a revision this build does not know (a newer Atelier migrated it) is
refused: `DatabaseAhead`, naming both revisions."""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from kit.db.engine import Database, DatabaseError

if TYPE_CHECKING:  # Alembic is imported when a process first checks its database (a quarter second saved else)
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_KEY = 0x61746C6965720001  # PostgreSQL's advisory lock for migrating Atelier's tables


class DatabaseAhead(DatabaseError):
    """The database is at a revision this build does not know."""

    def __init__(self, db: Database, found: str, newest: str) -> None:
        super().__init__(
            f"the database {db.shown} is at revision {found}, which this build does not know (its newest is "
            f"{newest}): run the Atelier that migrated it (or a newer one), or point ATELIER_DATABASE_URL elsewhere"
        )
        self.found, self.newest = found, newest


def config() -> Config:
    from alembic.config import Config

    alembic = Config()
    alembic.set_main_option("script_location", str(MIGRATIONS))
    return alembic


@cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config())


def head() -> str:
    """This build's newest revision."""
    return _scripts().get_current_head() or ""


def _known(db: Database, found: str | None) -> str | None:
    if found is not None and found not in {script.revision for script in _scripts().walk_revisions()}:
        raise DatabaseAhead(db, found, head())
    return found


def _revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def current(db: Database) -> str | None:
    """The revision the database is at (None: never migrated); `DatabaseAhead` for one this build does not know."""
    with db.changing() as connection:  # (a reading transaction would do: this one leaves no lock behind)
        return _known(db, _revision(connection))


_ready: set[str] = set()  # the addresses this process has upgraded
_readying = threading.Lock()


def upgrade(db: Database) -> str:
    """Migrate the database to this build's newest revision, under the migration lock; that revision. (It
    looks every time it is called: `ready` looks once per process.)"""
    with db.changing() as connection:
        if not db.sqlite:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        if _known(db, _revision(connection)) != head():
            from alembic import command

            alembic = config()
            alembic.attributes["connection"] = connection
            command.upgrade(alembic, "head")
    with _readying:
        _ready.add(db.address)
    return head()


def ready(db: Database) -> Database:
    """`db` at this build's newest revision: upgraded (or refused) the first time this process asks."""
    with _readying:
        known = db.address in _ready
    if not known:
        upgrade(db)
    return db

"""Alembic's environment: the connection `kit.db.migrate` hands over (in its locked transaction), or, for
Alembic's own command line (`alembic -c kit/db/alembic.ini revision --autogenerate -m WHAT`), the database
the settings name."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from kit.db.tables import metadata


def run(connection: Connection) -> None:
    # batch mode: SQLite alters a table by copying it, so a later migration's ALTER works on both databases
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if (handed := context.config.attributes.get("connection")) is not None:
    run(handed)
else:
    from kit.db.engine import database
    from models.settings import Settings

    with database(Settings().database_address).changing() as connection:
        run(connection)

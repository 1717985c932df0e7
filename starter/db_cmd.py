"""`atelier db upgrade|current`: the database of what is not a run (kit/db: keys, tenants, webhook endpoints,
upload marks). `up` and `serve` upgrade it at start (`prepare`); a database that a newer Atelier migrated is
refused with one line naming both revisions (exit 2: `kit.db.DatabaseAhead`, caught in `cli.main`)."""

from __future__ import annotations

import argparse

from kit.api_keys import KeyStore
from kit.db import Database, current, database, upgrade
from kit.db.migrate import head
from models.settings import Settings
from starter.common import stderr


def add_parser(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="the database of keys, tenants and webhooks (ATELIER_DATABASE_URL)")
    actions = db.add_subparsers(dest="action", required=True)
    actions.add_parser("upgrade", help="migrate it to this build's newest revision (and import an old keys file)")
    actions.add_parser("current", help="print the revision it is at (none: never migrated)")


def prepare(settings: Settings) -> Database:
    """The settings' database, upgraded now to this build's newest revision (refused when it is ahead), with a
    keys file of an earlier release imported."""
    upgrade(database(settings.database_address))
    return KeyStore(settings).database


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "upgrade":
        db = prepare(settings)
        stderr.print(f"database {db.shown} at revision {head()}", markup=False)
        return 0
    db = database(settings.database_address)
    found = current(db)
    print(found or "none")
    if found != head():
        stderr.print(f"this build's newest is {head()}: `python -m starter db upgrade` migrates it", markup=False)
    return 0

"""The database Atelier keeps what is not a run in (runs stay in Temporal): API keys and tenants, the studio's
session secret, webhook endpoints, upload marks; and what later features add next to them.

SQLAlchemy 2 (typed `Mapped[...]` tables, 2.0-style sessions) with Alembic migrations. An embedded SQLite file
in the data dir by default (`<ATELIER_DATA_DIR>/atelier.db`, WAL), PostgreSQL with `ATELIER_DATABASE_URL`.

- `engine.py`: a `Database` per address (its engine, reading and writing sessions), opened once per process.
- `base.py`: the declarative base every table derives from, and a UTC timestamp column type.
- `keys.py`, `webhooks.py`, `uploads.py`, `ratings.py`, `datasets.py`: each domain's tables and its repository
  (small typed methods on a session). A new domain adds a module like them and names it in `tables.py`.
- `migrate.py` and `migrations/`: `upgrade` to this build's newest revision (once per process, under a lock
  that keeps two processes from migrating at once), `current`; a database at a revision this build does not
  know is refused (`DatabaseAhead`). A new revision: `alembic -c kit/db/alembic.ini revision --autogenerate
  -m WHAT` (named `NNNN_what`, after the one before it).
"""

from kit.db.engine import Database, DatabaseError, database
from kit.db.migrate import DatabaseAhead, current, ready, upgrade

__all__ = ["Database", "DatabaseAhead", "DatabaseError", "current", "database", "ready", "upgrade"]

"""The database of what is not a run (kit/db), on SQLite and on a real PostgreSQL: migrations up from empty make
exactly the tables the code declares, processes that migrate at once migrate once, a keys file of the previous
release is imported once with every key, secret and session still working, a database ahead of the code is
refused with one line, and two real `serve` processes on one database share keys, sessions, revocations,
webhook endpoints and uploads (and keys survive a restart)."""

# ruff: noqa: F811 — the database fixtures are imported from tests/db_support.py and taken as arguments

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from PIL import Image
from sqlalchemy import func, inspect, select, text

from kit.api_keys import KeyStore, digest, import_keys_file
from kit.db import Database, current, database, upgrade
from kit.db.keys import FileImport, StoredKey
from kit.db.migrate import head
from kit.db.tables import metadata
from models.settings import Settings
from starter.api.sessions import SESSION_COOKIE, csrf_token, new_session
from tests.conftest import ROOT, address_of, atelier_env, cli_main, free_port, run_cli, spawn, stop_process, wait_for
from tests.db_support import database_address, pg_database, postgres  # noqa: F401

TABLES = {"tenants", "api_keys", "site_secrets", "file_imports", "webhook_endpoints", "uploads"}
FUTURE = "9999_from_a_newer_atelier"
KEYS = {"acme": "atl_" + "a" * 43, "gone": "atl_" + "g" * 43, "zeta": "atl_" + "z" * 43}  # `gone` was revoked
OLD_SESSION_SECRET = "the-previous-release-session-secret"


def previous_release_keys_file(path: Path) -> bytes:
    """A keys file as the release before the database wrote it (`.atelier/api-keys.json`): hashed keys, a
    revoked one, a key whose studio sessions moved on twice, the tenants' webhook secrets, an endpoint and a
    disabled one, and the session secret."""

    def key(name: str, tenant: str, revoked: str | None = None, generation: int = 0) -> dict:
        sha = digest(KEYS[name])
        return {
            "id": sha[:12],
            "tenant": tenant,
            "sha256": sha,
            "created_at": "2026-03-01T10:00:00Z",
            "revoked_at": revoked,
            "session_generation": generation,
        }

    def endpoint(id: str, disabled: str | None = None) -> dict:
        return {
            "id": id,
            "tenant": "acme",
            "url": f"https://hooks.example/{id}",
            "events": ["run.completed"],
            "secret": f"whsec_{id}",
            "created_at": "2026-03-02T10:00:00Z",
            "disabled_at": disabled,
        }

    content = {
        "keys": [
            key("acme", "acme", generation=2),
            key("gone", "acme", revoked="2026-03-03T10:00:00Z"),
            key("zeta", "zeta"),
        ],
        "webhook_secrets": {"acme": "whsec_acme_tenant", "zeta": "whsec_zeta_tenant"},
        "endpoints": [endpoint("ep_live"), endpoint("ep_dead", disabled="2026-03-04T10:00:00Z")],
        "session_secret": OLD_SESSION_SECRET,
    }
    data = json.dumps(content, indent=2).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def settings_for(tmp_path: Path, address: str) -> Settings:
    return Settings(ATELIER_DATA_DIR=str(tmp_path / "data"), ATELIER_DATABASE_URL=address, LLM_API_KEY=None)


def test_migrations_run_up_from_empty_to_exactly_the_tables_the_code_declares(database_address, tmp_path):
    env = atelier_env(tmp_path, "127.0.0.1:1", ATELIER_DATABASE_URL=database_address)
    before = cli_main("db", "current", env=env)
    assert (before.returncode, before.stdout.strip()) == (0, "none"), before.stderr
    upgraded = cli_main("db", "upgrade", env=env)
    assert upgraded.returncode == 0 and f"at revision {head()}" in upgraded.stderr, upgraded.stderr
    assert cli_main("db", "current", env=env).stdout.strip() == head()
    with Database(database_address).engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) >= TABLES
        assert compare_metadata(MigrationContext.configure(connection), metadata) == [], "models and migrations agree"
    again = cli_main("db", "upgrade", env=env)
    assert again.returncode == 0 and cli_main("db", "current", env=env).stdout.strip() == head()


def test_processes_that_migrate_at_once_migrate_once(database_address):
    """Each thread is a process's engine of its own, all upgrading an empty database at the same moment."""
    engines = [Database(database_address) for _ in range(4)]
    start, answers = threading.Barrier(len(engines)), []

    def migrate(db: Database) -> None:
        start.wait(30)
        try:
            answers.append(upgrade(db))
        except Exception as exc:  # the assertion below names it
            answers.append(repr(exc))

    threads = [threading.Thread(target=migrate, args=(db,)) for db in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == [head()] * len(engines)
    assert current(engines[0]) == head()


def test_a_keys_file_of_the_previous_release_is_imported_once_with_every_key_working(database_address, tmp_path):
    settings = settings_for(tmp_path, database_address)
    data = previous_release_keys_file(settings.api_keys_path)
    store = KeyStore(settings)
    acme, zeta = store.find(KEYS["acme"]), store.find(KEYS["zeta"])
    assert acme is not None and (acme.tenant, acme.session_generation) == ("acme", 2)
    assert zeta is not None and zeta.tenant == "zeta" and store.find(KEYS["gone"]) is None, "revoked stays revoked"
    assert store.signed_in(acme.sha256, 2) is not None and store.signed_in(acme.sha256, 1) is None
    assert store.session_secret() == OLD_SESSION_SECRET, "studio sessions signed before the upgrade still hold"
    assert (store.webhook_secret("acme"), store.webhook_secret("zeta")) == ("whsec_acme_tenant", "whsec_zeta_tenant")
    assert [(e.id, e.secret) for e in store.endpoints("acme")] == [("ep_live", "whsec_ep_live")]
    assert store.signing_secret("acme", "ep_dead") is None and store.signing_secret("zeta", "ep_live") is None
    assert settings.api_keys_path.read_bytes() == data, "the file is kept as it was"

    revoked = store.revoke(acme.id)  # after the import: a second start must not bring the key back
    assert revoked is not None and revoked.revoked_at is not None and store.revoke(acme.id) is None
    db = database(settings.database_address)
    assert import_keys_file(db, settings.api_keys_path) is False, "the same file is never imported twice"
    assert store.find(KEYS["acme"]) is None and len(store.load().keys) == 3
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(FileImport)) == 1


def test_changes_made_at_once_by_many_callers_are_each_kept_once(database_address, tmp_path):
    """Six threads, each as an API process or a CLI would: sign-outs, new keys, and the removal of endpoints,
    all at once, each in a transaction of its own; every change is kept, none twice."""
    settings = settings_for(tmp_path, database_address)
    _, shared = KeyStore(settings).add("shared")
    endpoints = [KeyStore(settings).add_endpoint("shared", f"https://hooks.example/{n}", None) for n in range(6)]
    start, outcomes = threading.Barrier(6), []

    def work(n: int) -> None:
        store = KeyStore(settings)
        start.wait(30)
        try:
            moved = [store.end_sessions(shared.sha256) is not None for _ in range(5)]
            added = [store.add("team")[1].tenant for _ in range(5)]
            removed = [store.disable_endpoint(endpoints[n].id) is not None for _ in range(2)]
            outcomes.append((moved, added, removed))
        except Exception as exc:  # the assertion below names it
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes == [([True] * 5, ["team"] * 5, [True, False])] * 6, "each endpoint disabled once"
    keys = KeyStore(settings).load().keys
    assert len(keys) == 1 + 30 and keys[0].session_generation == 30
    assert KeyStore(settings).endpoints("shared") == []


def test_a_database_ahead_of_the_code_is_refused_with_one_line(database_address, tmp_path):
    env = atelier_env(tmp_path, "127.0.0.1:1", ATELIER_DATABASE_URL=database_address)
    assert cli_main("db", "upgrade", env=env).returncode == 0
    with Database(database_address).changing() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": FUTURE})
    for command in (("db", "upgrade"), ("db", "current"), ("up",)):
        refused = cli_main(*command, env=env)
        assert refused.returncode == 2, (command, refused.stderr)
        assert refused.stderr.count("\n") == 1 and FUTURE in refused.stderr and head() in refused.stderr, command
    assert not (tmp_path / "data" / "run").exists(), "`up` started nothing"


def test_a_database_that_cannot_be_used_is_one_line_that_never_shows_its_password(tmp_path):
    unreachable = f"postgresql://atelier:hunter2-secret@127.0.0.1:{free_port()}/atelier"
    for command in (("db", "upgrade"), ("api-key", "list"), ("up",)):
        done = cli_main(*command, env=atelier_env(tmp_path, "127.0.0.1:1", ATELIER_DATABASE_URL=unreachable))
        assert done.returncode == 1 and done.stderr.count("\n") == 1, (command, done.stderr)
        assert "cannot be used" in done.stderr and "hunter2" not in done.stderr + done.stdout, command
    wrong = cli_main("db", "upgrade", env=atelier_env(tmp_path, "127.0.0.1:1", ATELIER_DATABASE_URL="mysql://db/x"))
    assert wrong.returncode == 2 and "ATELIER_DATABASE_URL" in wrong.stderr and wrong.stderr.count("\n") == 1


@pytest.mark.slow
def test_serve_and_the_cli_refuse_a_database_ahead_of_the_code_with_one_line_and_exit_2(database_address, tmp_path):
    env = atelier_env(tmp_path, "127.0.0.1:1", ATELIER_DATABASE_URL=database_address)
    upgrade(Database(database_address))
    with Database(database_address).changing() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": FUTURE})
    for command in (("serve", "--port", str(free_port())), ("api-key", "list")):
        refused = run_cli(*command, env=env)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, (command, refused.stderr)
        assert refused.stderr.startswith("error: the database ") and FUTURE in refused.stderr, command
        assert head() in refused.stderr, command


@contextlib.contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[str]:
    """A real `python -m starter serve` on a port of its own, until the block ends: its base URL."""
    port = free_port()
    with open(log, "ab") as out:
        process = spawn(
            [sys.executable, "-m", "starter", "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, f"serve exited {process.returncode}: {log.read_text()[-2000:]}"
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        return False

    try:
        wait_for(up, 90, f"the API at {base}")
        yield base
    finally:
        stop_process(process)


def webhooks(base: str, key: str | None = None, cookie: str | None = None) -> httpx.Response:
    """`GET /v1/webhooks`: answered from the database alone (the caller's key or session, its endpoints)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {"Cookie": f"{SESSION_COOKIE}={cookie}"}
    return httpx.get(f"{base}/v1/webhooks", headers=headers, timeout=30)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 90)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.slow
def test_an_upgraded_data_dir_serves_every_key_of_its_keys_file_and_keys_survive_a_restart(module_dev_env, tmp_path):
    """The upgrade a person makes: the previous release's data dir (its keys file), the new release's `serve`."""
    env = atelier_env(tmp_path, address_of(module_dev_env))
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'data' / 'atelier.db'}")
    previous_release_keys_file(settings.api_keys_path)
    acme_sha = digest(KEYS["acme"])
    old_cookie = new_session(OLD_SESSION_SECRET, acme_sha, 2)  # a browser signed in before the upgrade
    with serving(env, tmp_path / "api-1.log") as base:
        listed = webhooks(base, KEYS["acme"])
        assert listed.status_code == 200 and [e["id"] for e in listed.json()] == ["ep_live"]
        assert webhooks(base, KEYS["zeta"]).json() == [] and webhooks(base, KEYS["gone"]).status_code == 401
        assert webhooks(base, cookie=old_cookie).status_code == 200, "its studio session goes on"
        secret = httpx.get(f"{base}/v1/webhooks/secret", headers={"Authorization": f"Bearer {KEYS['zeta']}"})
        assert secret.json() == {"secret": "whsec_zeta_tenant"}
    revoked = run_cli("api-key", "revoke", acme_sha[:12], env=env)
    assert revoked.returncode == 0, revoked.stderr
    with serving(env, tmp_path / "api-2.log") as base:
        assert webhooks(base, KEYS["acme"]).status_code == 401, "a second start imports nothing again"
        assert webhooks(base, KEYS["zeta"]).status_code == 200, "keys survive the restart"
    with database(settings.database_address).reading() as session:
        assert session.scalar(select(func.count()).select_from(StoredKey)) == 3
    assert settings.api_keys_path.exists(), "the keys file is kept"


@pytest.mark.slow
def test_two_serve_processes_on_one_database_share_keys_sessions_revocations_and_uploads(
    database_address, module_dev_env, tmp_path
):
    env = atelier_env(
        tmp_path, address_of(module_dev_env), ATELIER_DATABASE_URL=database_address, ATELIER_WEBHOOK_ALLOW_PRIVATE="1"
    )
    store = KeyStore(settings_for(tmp_path, database_address))
    (acme, stored), (zeta, _) = store.add("acme"), store.add("zeta")
    picture = png()
    with serving(env, tmp_path / "one.log") as one, serving(env, tmp_path / "two.log") as two:
        assert webhooks(one, acme).status_code == 200 and webhooks(two, acme).status_code == 200

        made = httpx.post(f"{one}/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=bearer(acme))
        assert made.status_code == 201, made.text
        assert [e["id"] for e in webhooks(two, acme).json()] == [made.json()["id"]], "an endpoint made at one"

        sent = {"file": ("a.png", picture, "image/png")}
        uploaded = httpx.post(f"{one}/v1/uploads", files=sent, headers=bearer(acme))
        assert uploaded.status_code == 201, uploaded.text
        key = f"uploads/{hashlib.sha256(picture).hexdigest()}.png"
        assert httpx.get(f"{two}/v1/artifacts/{key}", headers=bearer(acme)).content == picture, "marked at one"
        assert httpx.get(f"{two}/v1/artifacts/{key}", headers=bearer(zeta)).status_code == 404, "not zeta's upload"

        signed_in = httpx.post(f"{one}/signin", data={"key": acme})
        assert signed_in.status_code == 303, signed_in.text
        cookie = signed_in.cookies[SESSION_COOKIE]
        assert webhooks(two, cookie=cookie).status_code == 200, "a session of one holds at the other"
        out = httpx.post(
            f"{two}/signout",
            data={"csrf": csrf_token(store.session_secret(), cookie)},
            headers={"Cookie": f"{SESSION_COOKIE}={cookie}", "Sec-Fetch-Site": "same-origin"},
        )
        assert out.status_code == 303, out.text
        assert webhooks(one, cookie=cookie).status_code == 401, "signed out at two: ended at one"

        assert store.revoke(stored.id) is not None  # as `api-key revoke` does, from a process of its own
        assert webhooks(one, acme).status_code == 401 and webhooks(two, acme).status_code == 401
        assert webhooks(one, zeta).status_code == 200 and webhooks(two, zeta).status_code == 200


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}

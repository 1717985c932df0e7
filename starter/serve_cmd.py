"""`atelier serve` runs the HTTP API; `atelier api-key add|list|revoke` manages its keys."""

from __future__ import annotations

import argparse

from kit.api_keys import BadTenant, KeyStore, as_json, listing
from models.settings import Settings
from starter import db_cmd
from starter.api.hosts import is_loopback
from starter.common import UsageError, stderr


def add_parsers(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run the HTTP API (ATELIER_API_HOST, ATELIER_API_PORT)")
    serve.add_argument("--host", default=None, help="address to listen on (default ATELIER_API_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default ATELIER_API_PORT, 8000)")
    keys = sub.add_parser("api-key", help="manage the API's keys (each maps to a tenant)")
    actions = keys.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="make a key for a tenant and print it (once)")
    add.add_argument("tenant")
    listed = actions.add_parser("list", help="list the keys (never the keys themselves)")
    listed.add_argument("--json", action="store_true")
    revoke = actions.add_parser("revoke", help="revoke a key by its id (from `list`)")
    revoke.add_argument("key_id")


def serve_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """The settings to serve with; an API without keys is refused anywhere but loopback."""
    update = {k: v for k, v in {"api_host": args.host, "api_port": args.port}.items() if v is not None}
    if "api_port" in update and not 1 <= update["api_port"] <= 65535:
        raise UsageError(f"--port {update['api_port']}: choose 1 to 65535")
    served = settings.model_copy(update=update)
    if not is_loopback(served.api_host) and not KeyStore(served).configured():
        raise UsageError(
            f"the API has no keys, so it serves one local tenant on loopback only (not {served.api_host}): "
            "add one with `python -m starter api-key add TENANT`"
        )
    return served


async def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from starter.app import create_app

    db_cmd.prepare(settings)  # migrated (or refused: a newer Atelier's) before it listens
    served = serve_settings(args, settings)
    stderr.print(f"Atelier API on {served.api_url} (docs {served.api_url}/docs)")
    config = uvicorn.Config(
        create_app(served), host=served.api_host, port=served.api_port, log_level="warning", lifespan="on"
    )
    await uvicorn.Server(config).serve()
    return 0


async def run_api_key(args: argparse.Namespace, settings: Settings) -> int:
    store = KeyStore(settings)
    if args.action == "add":
        try:
            key, stored = store.add(args.tenant)
        except BadTenant as exc:
            raise UsageError(str(exc)) from exc
        print(key)
        stderr.print(
            f"key {stored.id} for tenant {stored.tenant}: shown once, stored as its SHA-256 in {store.shown}",
            markup=False,
        )
    elif args.action == "list":
        print(as_json(store) if args.json else listing(store))
    elif (revoked := store.revoke(args.key_id)) is None:
        raise UsageError(f"no active key {args.key_id!r} (see `python -m starter api-key list`)")
    else:
        stderr.print(f"revoked key {revoked.id} of tenant {revoked.tenant}")
    return 0

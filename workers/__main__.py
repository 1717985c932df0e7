"""`python -m workers [--queue NAME]`: run Atelier's task queues until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time

from pydantic import ValidationError

from activities.providers import Providers
from activities.providers.endpoint_check import endpoint_warnings
from kit.connection import connect, has_search_attributes, missing_search_attributes
from kit.storage import make_store
from models.catalog import Catalog, load_catalog
from models.settings import Settings, invalid_settings
from workers.health import WorkerHealth, start_health_server
from workers.metrics import metrics_runtime
from workers.registry import QUEUES, build_workers
from workers.versioning import deployment_version

log = logging.getLogger("atelier.worker")


async def serve(settings: Settings, catalog: Catalog, queues: list[str]) -> None:
    health = WorkerHealth(settings.temporal_namespace)
    stop = asyncio.Event()  # SIGINT/SIGTERM: handled from the start (as PID 1 an unhandled SIGTERM is dropped)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as probes:
        if settings.health_port is not None:  # up first: live while connecting, ready once polling
            server = await start_health_server(health, settings.health_host, settings.health_port)
            probes.push_async_callback(closed, server)
        await run_workers(settings, catalog, queues, health, stop)


async def closed(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


async def run_workers(
    settings: Settings, catalog: Catalog, queues: list[str], health: WorkerHealth, stop: asyncio.Event
) -> None:
    runtime = metrics_runtime(settings)
    connecting = asyncio.ensure_future(connect_patiently(settings, runtime))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([connecting, stopped], return_when=asyncio.FIRST_COMPLETED)
    if not connecting.done():  # told to stop before Temporal answered: nothing runs yet, nothing to finish
        connecting.cancel()
        log.info("worker stopped before it connected")
        return
    stopped.cancel()
    client = connecting.result()
    if not await has_search_attributes(client, settings.temporal_namespace):
        log.warning(missing_search_attributes(settings.temporal_namespace))
    for warning in await endpoint_warnings(settings, catalog, queues):
        log.warning(warning)
    providers = Providers(catalog, settings)
    workers = build_workers(client, queues, providers, make_store(settings), settings)
    if stop.is_set():  # told to stop while the models loaded
        log.info("worker stopped before it polled")
        return
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        health.client, health.workers = client, workers
        version = deployment_version(settings)
        log.info(
            "worker polling %s on %s (%s, storage %s, %s)",
            ", ".join(queues),
            settings.temporal_address,
            providers.describe(),
            settings.storage,
            f"deployment {version.deployment_name} build {version.build_id}" if version else "unversioned",
        )
        await stop.wait()
        health.draining = True
        log.info("shutting down: finishing in-flight tasks")
    log.info("worker stopped")


async def connect_patiently(settings: Settings, runtime, wait_s: float = 60.0):
    """A worker may start before Temporal is ready (a restart, a compose stack): keep trying a while."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return await connect(settings, runtime, service="atelier-worker")
        except RuntimeError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("waiting for Temporal at %s: %s", settings.temporal_address, str(exc)[:120])
            await asyncio.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers", description="Run Atelier workers.")
    parser.add_argument("--queue", action="append", choices=QUEUES, help="run only this queue (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
        catalog = load_catalog(settings)  # a catalog that cannot serve stops the worker here, naming the entry
        catalog.check_keys()
        asyncio.run(serve(settings, catalog, args.queue or list(QUEUES)))
    except ValidationError as exc:
        print(f"error: {invalid_settings(exc)}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    code = main()
    from kit import tracing

    tracing.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # see starter.cli.entry: no finalization race with Temporal's core threads

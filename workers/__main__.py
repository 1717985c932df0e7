"""`python -m workers [--queue NAME]`: run Atelier's task queues until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from activities.providers import make_provider
from activities.storage import make_store
from models.settings import Settings
from workers.connection import connect, metrics_runtime
from workers.registry import QUEUES, build_workers

log = logging.getLogger("atelier.worker")


async def serve(settings: Settings, queues: list[str]) -> None:
    runtime = metrics_runtime(settings)
    client = await connect(settings, runtime, service="atelier-worker")
    provider = make_provider(settings)
    workers = build_workers(client, queues, provider, make_store(settings), settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        log.info(
            "worker polling %s on %s (provider %s, storage %s)",
            ", ".join(queues),
            settings.temporal_address,
            provider.name,
            settings.storage,
        )
        await stop.wait()
        log.info("shutting down: finishing in-flight tasks")
    log.info("worker stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers", description="Run Atelier workers.")
    parser.add_argument("--queue", action="append", choices=QUEUES, help="run only this queue (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
        asyncio.run(serve(settings, args.queue or list(QUEUES)))
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The API's FastAPI app: one Temporal client, the artifact store and the keys, shared by every request. It
knows nothing of the Studio: `starter.app` builds the app that serves both."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from activities.storage import make_store
from kit.api_keys import KeyStore
from kit.connection import connect
from models.settings import Settings
from starter.api import problems
from starter.api.body_limits import BodyLimits
from starter.api.hosts import is_loopback
from starter.api.routes import artifacts, conversations, creates, events, knowledge, runs, webhooks
from starter.api.service import RateLimiter, Service

log = logging.getLogger("atelier.api")


def session_secret(keys: KeyStore) -> str:
    """The keys file's (shared by every API process that reads it), or this process's own when the file
    cannot be written (a read-only mount): sessions then last as long as the process."""
    try:
        return keys.session_secret()
    except OSError as exc:
        log.warning("keys file %s is read-only (%s): studio sessions end when this API stops", keys.path, exc)
        return secrets.token_urlsafe(32)


def create_app(settings: Settings, client: Client | None = None) -> FastAPI:
    """The API; it connects to Temporal when it starts (or uses `client`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keys = KeyStore(settings.api_keys_path)
        app.state.service = Service(
            settings=settings,
            client=client or await connect(settings, service="atelier-api"),
            store=make_store(settings),
            keys=keys,
            limiter=RateLimiter(settings.api_rate_per_minute),
            keyed=keys.configured() or not is_loopback(settings.api_host),
            secret=session_secret(keys),
        )
        yield

    app = FastAPI(
        responses=problems.RESPONSES,
        title="Atelier",
        version="1",
        summary="Durable AI content pipelines on Temporal: start, follow and fetch runs; events and webhooks.",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(BodyLimits, max_body_bytes=settings.api_max_body_bytes)  # the caller, then the body
    for module in (creates, runs, events, artifacts, webhooks, conversations, knowledge):
        app.include_router(module.router)

    @app.get("/healthz", tags=["service"], summary="Whether the API is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

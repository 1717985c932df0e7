"""The API's FastAPI app: one Temporal client, the artifact store and the keys, shared by every request. It
knows nothing of the Studio: `starter.app` builds the app that serves both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from kit.api_keys import KeyStore
from kit.connection import connect
from kit.storage import make_store
from models.settings import Settings
from starter.api import problems
from starter.api.body_limits import BodyLimits
from starter.api.hosts import is_loopback
from starter.api.routes import (
    artifacts,
    branches,
    conversations,
    creates,
    events,
    experiments,
    knowledge,
    life,
    models,
    ratings,
    runs,
    webhooks,
)
from starter.api.service import RateLimiter, Service


def create_app(settings: Settings, client: Client | None = None) -> FastAPI:
    """The API; it connects to Temporal when it starts (or uses `client`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keys = KeyStore(settings)  # the database's, shared by every API process on it
        app.state.service = Service(
            settings=settings,
            client=client or await connect(settings, service="atelier-api"),
            store=make_store(settings),
            keys=keys,
            limiter=RateLimiter(settings.api_rate_per_minute),
            keyed=keys.configured() or not is_loopback(settings.api_host),
            secret=keys.session_secret(),
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
    routers = (
        creates,
        life,
        runs,
        branches,
        events,
        artifacts,
        webhooks,
        conversations,
        knowledge,
        models,
        experiments,
        ratings,
    )
    for module in routers:
        app.include_router(module.router)

    @app.get("/healthz", tags=["service"], summary="Whether the API is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

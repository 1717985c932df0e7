"""The one app `python -m starter serve` runs: the API (`starter.api.app`, which knows nothing of the Studio)
with the Studio's pages, static files and error pages installed on it (`starter.studio.app`)."""

from __future__ import annotations

from fastapi import FastAPI
from temporalio.client import Client

from models.settings import Settings
from starter.api.app import create_app as create_api
from starter.studio import app as studio


def create_app(settings: Settings, client: Client | None = None) -> FastAPI:
    """The API and the Studio on one origin; it connects to Temporal when it starts (or uses `client`)."""
    app = create_api(settings, client)
    studio.install(app)
    return app

"""Links the API hands out: a run's resources, and artifacts through `GET /v1/artifacts/{key}` (never a
worker's path)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from models.api import RunUrls
from models.events import with_artifact_links
from models.settings import Settings


def run_urls(settings: Settings, workflow_id: str) -> RunUrls:
    base = f"{settings.api_url}/v1/runs/{quote(workflow_id, safe='')}"
    return RunUrls(
        run=base,
        events=f"{base}/events",
        result=f"{base}/result",
        cancel=f"{base}/cancel",
        temporal_ui=settings.workflow_ui_link(workflow_id),
    )


def with_links(settings: Settings, value: Any) -> Any:
    """A result's or event's JSON with a `url` beside every artifact key."""
    return with_artifact_links(settings.api_url, value)

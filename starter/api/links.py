"""Links the API hands out: a run's resources, and artifacts through `GET /v1/artifacts/{key}` (never a
worker's path)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from models.api import RunUrls
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


def artifact_url(settings: Settings, key: str) -> str:
    return f"{settings.api_url}/v1/artifacts/{quote(key)}"


def with_links(settings: Settings, value: Any) -> Any:
    """A result's JSON with a `url` beside every artifact reference (a dict with key and sha256)."""
    if isinstance(value, dict):
        linked = {name: with_links(settings, item) for name, item in value.items()}
        if isinstance(value.get("key"), str) and "sha256" in value:
            linked["url"] = artifact_url(settings, value["key"])
        return linked
    if isinstance(value, list):
        return [with_links(settings, item) for item in value]
    return value

"""A worker's look at its model endpoints when it starts: one warning line per endpoint that cannot be
reached or refuses its key, naming the setting (or the catalog entry) to fix. The endpoints are the catalog's:
a models file's entries, else the settings' LLM_*, IMAGE_* and EVAL_*. The worker starts anyway (the provider
may come back; calls retry until it does); a malformed base URL is refused earlier, by the settings."""

from __future__ import annotations

import dataclasses

import httpx

from models.catalog import Catalog
from models.endpoints import Endpoint, Kind
from models.settings import IMAGE_QUEUE, TEXT_QUEUE, Settings

CHECK_TIMEOUT_S = 5.0


def endpoints_used(settings: Settings, catalog: Catalog, queues: list[str]) -> list[Endpoint]:
    """The distinct servers this worker's queues call: the catalog's models of the kinds its queues serve."""
    wanted: list[Kind] = (["text", "eval"] if TEXT_QUEUE in queues else []) + (
        ["image"] if IMAGE_QUEUE in queues else []
    )
    distinct: list[Endpoint] = []
    for kind in wanted:
        for model in catalog.of_kind(kind):
            if model.provider == "offline":
                continue
            endpoint = (
                settings.endpoint(kind)  # named by the settings it came from (LLM_BASE_URL, IMAGE_API_KEY, …)
                if catalog.source == "settings"
                else dataclasses.replace(
                    catalog.endpoint(model, kind), url_setting=f"{catalog.source}: model {model.id!r} base_url"
                )
            )
            if not any(endpoint.same_server(seen) for seen in distinct):
                distinct.append(endpoint)
    return distinct


async def check(endpoint: Endpoint, transport: httpx.AsyncBaseTransport | None = None) -> str | None:
    """A warning when `GET <base>/models` cannot be made or the key is refused; None when it answers."""
    headers = {"authorization": f"Bearer {endpoint.api_key.get_secret_value()}"} if endpoint.api_key else {}
    try:
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S, transport=transport) as client:
            response = await client.get(f"{endpoint.url}/models", headers=headers)
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        return f"cannot reach {endpoint.url_setting}={endpoint.url} ({reason}): model calls will wait and retry"
    if response.status_code in (401, 403):
        return (
            f"{endpoint.key_setting} was refused by {endpoint.url} (HTTP {response.status_code}): "
            "model calls will fail until it is fixed"
        )
    return None  # any other answer (a server without /models included) means it is there


async def endpoint_warnings(settings: Settings, catalog: Catalog, queues: list[str]) -> list[str]:
    return [warning for endpoint in endpoints_used(settings, catalog, queues) if (warning := await check(endpoint))]

"""A worker's look at its model endpoints when it starts: one warning line per endpoint that cannot be
reached or refuses its key, naming the setting to fix. The worker starts anyway (the provider may come
back; calls retry until it does); a malformed base URL is refused earlier, by the settings."""

from __future__ import annotations

import httpx

from models.endpoints import Endpoint
from models.settings import IMAGE_QUEUE, TEXT_QUEUE, Settings

CHECK_TIMEOUT_S = 5.0


def endpoints_used(settings: Settings, queues: list[str]) -> list[Endpoint]:
    """The distinct servers this worker's queues call."""
    if settings.resolved_provider == "offline":
        return []
    wanted = (["text", "eval"] if TEXT_QUEUE in queues else []) + (
        ["image"] if IMAGE_QUEUE in queues and settings.image_api != "offline" else []
    )
    distinct: list[Endpoint] = []
    for kind in wanted:
        endpoint = settings.endpoint(kind)  # type: ignore[arg-type]
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


async def endpoint_warnings(settings: Settings, queues: list[str]) -> list[str]:
    return [warning for endpoint in endpoints_used(settings, queues) if (warning := await check(endpoint))]

"""One way to reach Temporal: the settings' address and namespace, pydantic payloads."""

from __future__ import annotations

import dataclasses

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError

from models.search_attributes import KEYS
from models.settings import Settings


def data_converter(settings: Settings) -> DataConverter:
    """pydantic payloads, encrypted when ATELIER_CODEC_KEY is set."""
    if settings.codec_key is None:
        return pydantic_data_converter
    from workers.codec import EncryptionCodec, parse_key

    codec = EncryptionCodec(parse_key(settings.codec_key.get_secret_value()))
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


# Buckets that fit what each histogram measures (the SDK's default buckets are milliseconds).
HISTOGRAM_BUCKETS: dict[str, list[float]] = {
    "atelier_call_cost_usd": [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
    "atelier_technical_score": [10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    "atelier_meme_score": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    "atelier_scoring_batch_size": [1, 2, 4, 8, 16, 32, 64, 128, 256],
}


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A runtime whose SDK and custom metrics are served for Prometheus, when a port is set."""
    if settings.metrics_port is None:
        return None
    address = f"{settings.metrics_host}:{settings.metrics_port}"
    prometheus = PrometheusConfig(bind_address=address, histogram_bucket_overrides=HISTOGRAM_BUCKETS)
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


async def connect(settings: Settings, runtime: Runtime | None = None, service: str = "atelier") -> Client:
    from workers.tracing import interceptors

    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        runtime=runtime,
        interceptors=interceptors(service),
    )


async def has_search_attributes(client: Client, namespace: str) -> bool:
    """Whether the namespace has all of Atelier's search attributes. A server that will not say (e.g. Temporal
    Cloud without operator rights) is assumed to have them: a start that needs them then says so."""
    try:
        listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    except RPCError:
        return True
    present = set(listed.custom_attributes) | set(listed.system_attributes)
    return all(key.name in present for key in KEYS)


def missing_search_attributes(namespace: str) -> str:
    return (
        f"namespace {namespace!r} lacks Atelier's search attributes: runs are not searchable by pipeline; register "
        "them with `python -m starter server` / `up` (they pass --search-attribute) or "
        "`temporal operator search-attribute create` as the README shows"
    )

"""One way to reach Temporal: the settings' address and namespace, pydantic payloads."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from models.settings import Settings


def data_converter(settings: Settings) -> DataConverter:
    """pydantic payloads, encrypted when ATELIER_CODEC_KEY is set."""
    if settings.codec_key is None:
        return pydantic_data_converter
    from workers.codec import EncryptionCodec, parse_key

    codec = EncryptionCodec(parse_key(settings.codec_key.get_secret_value()))
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A runtime whose SDK and custom metrics are served for Prometheus, when a port is set."""
    if settings.metrics_port is None:
        return None
    address = f"{settings.metrics_host}:{settings.metrics_port}"
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


async def connect(settings: Settings, runtime: Runtime | None = None, service: str = "atelier") -> Client:
    from workers.tracing import interceptors

    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        runtime=runtime,
        interceptors=interceptors(service),
    )

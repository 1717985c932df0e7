"""The workers' metrics: SDK and custom metrics served for Prometheus when ATELIER_METRICS_PORT is set."""

from __future__ import annotations

from temporalio.runtime import PrometheusConfig, Runtime

from kit.connection import sdk_telemetry
from models.settings import Settings

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
    return Runtime(telemetry=sdk_telemetry(metrics=prometheus))

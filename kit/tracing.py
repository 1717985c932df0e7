"""OpenTelemetry tracing: one trace per run, from the starter through workflows, child workflows
and activities (temporalio.contrib.opentelemetry), with provider calls as spans.

Spans are exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise nothing is
installed and tracing costs nothing.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

_installed = False


def install(service: str, exporter: SpanExporter | None = None) -> bool:
    """Install a tracer provider once per process: the given exporter, else OTLP if configured.

    An exporter given once a provider is installed is added to it (a process has one provider)."""
    global _installed
    if _installed:
        provider = trace.get_tracer_provider()
        if exporter is not None and isinstance(provider, TracerProvider):
            provider.add_span_processor(BatchSpanProcessor(exporter))
        return True
    if exporter is None:
        if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            return False
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _installed = True
    return True


def interceptors(service: str) -> list[Interceptor]:
    """Client interceptors (workers built from the client inherit them)."""
    return [TracingInterceptor()] if install(service) else []


def shutdown() -> None:
    """Flush spans before a process exits without running atexit handlers."""
    if _installed:
        provider = trace.get_tracer_provider()
        if isinstance(provider, TracerProvider):
            provider.shutdown()

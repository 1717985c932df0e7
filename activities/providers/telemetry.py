"""Traces and metrics of model calls: one span per call, and counters and histograms per worker."""

from __future__ import annotations

from opentelemetry import trace
from temporalio import activity

from models.usage import Usage

tracer = trace.get_tracer("atelier.providers")


def describe_span(span: trace.Span, ms: float, used: Usage) -> None:
    span.set_attributes(
        {
            "atelier.latency_ms": ms,
            "atelier.input_tokens": used.input_tokens,
            "atelier.output_tokens": used.output_tokens,
            "atelier.images": used.images,
            "atelier.cost_usd": used.estimated_cost_usd,
        }
    )


def count_call(call: str, provider: str, ok: bool, ms: float, used: Usage) -> None:
    """The worker's metrics for one call: calls, latency, tokens, images and cost per model."""
    if not activity.in_activity():
        return
    meter = activity.metric_meter().with_additional_attributes(
        {"call": call, "provider": provider, "outcome": "ok" if ok else "error"}
    )
    meter.create_counter("atelier_provider_calls", "model calls made").add(1)
    meter.create_histogram("atelier_provider_call_ms", "model call latency", "ms").record(int(ms))
    for model, row in used.models.items():
        per_model = meter.with_additional_attributes({"model": model})
        tokens = per_model.create_counter("atelier_tokens", "tokens used by model calls")
        tokens.with_additional_attributes({"direction": "input"}).add(row.input_tokens)
        tokens.with_additional_attributes({"direction": "output"}).add(row.output_tokens)
        per_model.create_counter("atelier_images_generated", "images generated").add(row.images)
        if row.cost_usd is not None:
            cost = per_model.create_histogram_float("atelier_call_cost_usd", "estimated cost per call", "USD")
            cost.record(row.cost_usd)

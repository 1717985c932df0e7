"""One connected trace per run: starter → world → character children → activities → provider calls."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit import tracing
from kit.storage import LocalStore
from models.settings import WORKFLOW_QUEUE
from models.world import WorldJob
from tests.conftest import running_workers
from workflows.world import WorldWorkflow


async def test_span_tree_is_connected(time_env, tmp_path):
    exporter = InMemorySpanExporter()
    assert tracing.install("atelier-test", exporter)
    client = await Client.connect(
        time_env.client.service_client.config.target_host,
        data_converter=pydantic_data_converter,
        interceptors=tracing.interceptors("atelier-test"),
    )
    provider = GuardedProvider(OfflineProvider(), tmp_path / "calls.jsonl")
    job = WorldJob(prompt="A lighthouse town of storm chasers", characters=2, posts_per_character=1, images=False)
    async with running_workers(client, provider, LocalStore(tmp_path / "store")):
        with trace.get_tracer("test").start_as_current_span("starter world") as root:
            await client.execute_workflow(WorldWorkflow.run, job, id="traced-world", task_queue=WORKFLOW_QUEUE)
    trace.get_tracer_provider().force_flush()
    spans = exporter.get_finished_spans()
    names = {s.name for s in spans}
    trace_id = root.get_span_context().trace_id
    expected = {
        "StartWorkflow:WorldWorkflow",
        "RunWorkflow:WorldWorkflow",
        "StartChildWorkflow:CharacterWorkflow",
        "RunWorkflow:CharacterWorkflow",
        "RunActivity:post_detail",
        "provider structured:PostDetail",
    }
    assert expected <= names
    assert all(s.context.trace_id == trace_id for s in spans), "one trace for the whole run"
    ids = {s.context.span_id for s in spans}
    orphans = [s.name for s in spans if s.parent is None and s.name != "starter world"]
    assert not orphans and all(s.parent.span_id in ids for s in spans if s.parent), "the tree is connected"
    call = next(s for s in spans if s.name == "provider structured:PostDetail")
    assert call.attributes["atelier.provider"] == "offline" and "atelier.latency_ms" in call.attributes
    assert call.attributes["atelier.input_tokens"] > 0 and call.attributes["atelier.output_tokens"] > 0
    assert call.attributes["atelier.cost_usd"] == 0.0  # the offline provider is free

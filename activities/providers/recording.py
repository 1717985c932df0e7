"""A provider wrapper that instruments every model call: a span, metrics, usage and cost, a log line.

Each log line names the call, the workflow and activity that made it, the attempt, how long it took,
whether it succeeded and what it used: an audit trail of paid calls, and how the crash tests count them.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Coroutine
from datetime import UTC
from pathlib import Path
from typing import Any, TypeVar

from opentelemetry import trace
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.breaker import Breakers
from activities.providers import usage
from activities.providers.base import GeneratedBytes, Provider, ReferenceInput, T
from activities.rate_limits import Gates, RateLimited
from models.image import Evaluation, ImageOptions, RefinedPrompt, RefinePromptRequest
from models.usage import DEFAULT_PRICES, Price, Usage

R = TypeVar("R")
tracer = trace.get_tracer("atelier.providers")


Work = Callable[[], Coroutine[Any, Any, R]]


class RecordingProvider:
    def __init__(
        self,
        inner: Provider,
        path: Path | None,
        prices: dict[str, Price] | None = None,
        breakers: Breakers | None = None,
        gates: Gates | None = None,
        deadlines_s: dict[str, float] | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.path = path
        self.prices = DEFAULT_PRICES if prices is None else prices
        self.breakers = breakers
        self.gates = gates or Gates()
        self.deadlines_s = deadlines_s or {"text": 1800.0, "image": 3600.0}
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)

    async def _record(self, call: str, work: Work[R]) -> R:
        """The call behind its rate-limit gate and circuit breaker, instrumented; a 429 waits and tries again
        (same attempt) until the per-call deadline, counted from when Temporal first scheduled the call."""
        gate = self.gates.for_call(call)
        kind = "image" if call == "generate_image" else "text"
        deadline = _scheduled_at() + self.deadlines_s[kind]
        while True:
            await gate.wait_turn()
            try:
                breaker = self.breakers.for_call(call) if self.breakers else None
                with breaker.guard() if breaker else contextlib.nullcontext():
                    return await self._instrumented(call, work())
            except RateLimited as limited:
                if time.time() + limited.wait_s > deadline:
                    raise ApplicationError(
                        f"{limited.message}; waiting longer would pass this call's {self.deadlines_s[kind]:.0f} s "
                        f"deadline (ATELIER_{kind.upper()}_DEADLINE_S)",
                        type="RateLimitDeadline",
                        non_retryable=True,
                    ) from limited
                gate.close_for(limited.wait_s)

    async def _instrumented(self, call: str, work: Coroutine[Any, Any, R]) -> R:
        started = time.monotonic()
        entry: dict[str, Any] = {"at": time.time(), "provider": self.name, "call": call}
        if activity.in_activity():
            info = activity.info()
            entry |= {"workflow_id": info.workflow_id, "activity_id": info.activity_id, "attempt": info.attempt}
        with tracer.start_as_current_span(f"provider {call}") as span:
            span.set_attribute("atelier.provider", self.name)
            span.set_attribute("atelier.model_call", call)
            if model := getattr(self.inner, "model_for", lambda _: None)(call):
                span.set_attribute("atelier.model", model)
            notes = usage.start_call()
            try:
                result = await work
                entry["ok"] = True
                return result
            except BaseException as exc:
                entry |= {"ok": False, "error": type(exc).__name__}
                raise
            finally:
                entry["ms"] = round((time.monotonic() - started) * 1000, 1)
                used = usage.finish_call(notes, self.prices)
                entry |= {"tokens": [used.input_tokens, used.output_tokens], "images": used.images}
                entry["cost_usd"] = used.estimated_cost_usd
                span.set_attributes(
                    {
                        "atelier.latency_ms": entry["ms"],
                        "atelier.input_tokens": used.input_tokens,
                        "atelier.output_tokens": used.output_tokens,
                        "atelier.images": used.images,
                        "atelier.cost_usd": used.estimated_cost_usd,
                    }
                )
                self._log(entry, used)

    def _log(self, entry: dict[str, Any], used: Usage) -> None:
        if self.path:
            with self.path.open("a") as log:
                log.write(json.dumps(entry) + "\n")
        if activity.in_activity():
            self._count(entry["call"], entry["ok"], entry["ms"], used)

    def _count(self, call: str, ok: bool, ms: float, used: Usage) -> None:
        meter = activity.metric_meter().with_additional_attributes(
            {"call": call, "provider": self.name, "outcome": "ok" if ok else "error"}
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

    async def structured(
        self,
        schema: type[T],
        instructions: str,
        prompt: str,
        context: BaseModel | None = None,
        max_cost_usd: float | None = None,
    ) -> T:
        return await self._record(
            f"structured:{schema.__name__}",
            lambda: self.inner.structured(schema, instructions, prompt, context, max_cost_usd),
        )

    async def generate_image(
        self,
        prompt: str,
        options: ImageOptions,
        references: list[ReferenceInput],
        previous_response_id: str | None,
        max_cost_usd: float | None = None,
    ) -> GeneratedBytes:
        return await self._record(
            "generate_image",
            lambda: self.inner.generate_image(prompt, options, references, previous_response_id, max_cost_usd),
        )

    async def evaluate_image(
        self, image: bytes, content_type: str, prompt: str, max_cost_usd: float | None = None
    ) -> Evaluation:
        return await self._record(
            "evaluate_image", lambda: self.inner.evaluate_image(image, content_type, prompt, max_cost_usd)
        )

    async def refine_prompt(self, request: RefinePromptRequest) -> RefinedPrompt:
        return await self._record("refine_prompt", lambda: self.inner.refine_prompt(request))


def _scheduled_at() -> float:
    """When Temporal first scheduled the running activity (now, outside an activity), as a Unix time."""
    if not activity.in_activity():
        return time.time()
    scheduled = activity.info().scheduled_time
    return (scheduled if scheduled.tzinfo else scheduled.replace(tzinfo=UTC)).timestamp()


def read_log(path: Path) -> list[dict[str, Any]]:
    """The log's entries; a line cut short by a crash is skipped."""
    entries = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries

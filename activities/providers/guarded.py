"""The provider every activity calls: the configured provider, guarded and instrumented.

Guarded: each call waits behind its kind's rate-limit gate (a 429 waits and tries again) and goes
through its circuit breaker. Instrumented: a span, metrics, priced usage and a call-log line.
Each call returns `Metered`: the reply with what the call used, priced, for the activity to hand on;
what every call used, failed ones included, also goes into the activity's heartbeats (`heartbeat.spent`),
and a call's cap is what is left of it once the activity's earlier attempts are paid for (`cap_left`).

One per catalog model (`activities.providers.Providers`): its gates, breakers and learned limits are that
model's, and its results name it (`Metered.model`, usage under its catalog id).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.breaker import Breakers
from activities.heartbeat import cap_left, spent
from activities.learned_limits import LimitLearner, last_headers
from activities.providers import usage
from activities.providers.base import GeneratedBytes, Provider, ReferenceInput, T, TextStream
from activities.providers.call_log import CallLog
from activities.providers.telemetry import count_call, describe_span, tracer
from activities.rate_limits import Gate, Gates, RateLimited, kind_of
from models.image import Evaluation, ImageOptions, RefinedPrompt, RefinePromptRequest
from models.usage import DEFAULT_PRICES, Metered, Price, Usage

R = TypeVar("R")


Work = Callable[[usage.CallNotes], Coroutine[Any, Any, R]]


class GuardedProvider:
    def __init__(
        self,
        inner: Provider,
        path: CallLog | Path | None,
        prices: dict[str, Price] | None = None,
        breakers: Breakers | None = None,
        gates: Gates | None = None,
        deadlines_s: dict[str, float] | None = None,
        learner: LimitLearner | None = None,
        model_id: str | None = None,
        named: dict[str, str] | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.model_id = model_id  # the catalog id it serves (None: the worker's one provider, by model name)
        self.named = named or {}  # usage rows renamed: its model's provider name → its catalog id
        self.log = path if isinstance(path, CallLog) else CallLog(path)
        self.prices = DEFAULT_PRICES if prices is None else prices
        self.breakers = breakers
        self.gates = gates or Gates()
        self.deadlines_s = deadlines_s or {"text": 1800.0, "image": 3600.0}
        self.learner = learner
        self._first = {"text": asyncio.Lock(), "image": asyncio.Lock()}

    async def _record(self, call: str, work: Work[R]) -> Metered[R]:
        """The call behind its rate-limit gate and circuit breaker, instrumented; a 429 waits and tries again
        (same attempt) until the per-call deadline, counted from when Temporal first scheduled the call."""
        endpoint = self.endpoint_for(call)
        gate = self.gates.for_call(call, endpoint)
        kind = kind_of(call)
        deadline = _scheduled_at() + self.deadlines_s[kind]
        while True:
            try:
                breaker = self.breakers.for_call(call, endpoint) if self.breakers else None
                async with self._first_answer(kind):
                    await gate.wait_turn()
                    last_headers.set(None)
                    with breaker.guard() if breaker else contextlib.nullcontext():
                        result = await self._instrumented(call, work)
                await self._learn(kind, gate, refused=False)
                return result
            except RateLimited as limited:
                await self._learn(kind, gate, refused=True)
                if time.time() + limited.wait_s > deadline:
                    raise ApplicationError(
                        f"{limited.message}; waiting longer would pass this call's {self.deadlines_s[kind]:.0f} s "
                        f"deadline (ATELIER_{kind.upper()}_DEADLINE_S)",
                        type="RateLimitDeadline",
                        non_retryable=True,
                    ) from limited
                gate.close_for(limited.wait_s)

    @contextlib.asynccontextmanager
    async def _first_answer(self, kind: str) -> AsyncIterator[None]:
        """Slow start: while a kind's limit is still to be learned and nothing has answered yet, one call at
        a time (the first answer says the limit; a burst before it would be refused and, with most
        providers, counted against the limit)."""
        if self.learner is None or not self.learner.learning(kind) or kind in self.learner.answered:
            yield
            return
        async with self._first[kind]:
            yield

    async def _learn(self, kind: str, gate: Gate, refused: bool) -> None:
        """What the provider said about its limit: the queue's server-side limit, and this process's pace
        after a refusal (unless the user configured the kind's RPM)."""
        if self.learner is None or not self.learner.learning(kind):
            return
        self.learner.observe(kind, last_headers.get(), refused)
        if (rpm := self.learner.pace(kind)) is not None:
            gate.pace(60 / rpm)
        await self.learner.apply(kind)

    def endpoint_for(self, call: str) -> str | None:
        """The endpoint a call goes to when the provider has several (None: one for all)."""
        return getattr(self.inner, "endpoint_for", lambda _: None)(call)

    def provider_for(self, call: str) -> str:
        """How results and the call log name where a call went (`openai`, `openrouter`, a host:port, …)."""
        return getattr(self.inner, "provider_for", lambda _: self.name)(call)

    def model_for(self, call: str) -> str | None:
        """The provider's name for the model a call goes to (`gpt-4o`, `offline-vivid`), if it says."""
        return getattr(self.inner, "model_for", lambda _: None)(call)

    def made_by(self, call: str) -> str | None:
        """How results name the model that answered a call: its catalog id, else the provider's model name."""
        return self.model_id or self.model_for(call)

    async def _instrumented(self, call: str, work: Work[R]) -> Metered[R]:
        started = time.monotonic()
        entry: dict[str, Any] = {"at": time.time(), "provider": self.provider_for(call), "call": call}
        if activity.in_activity():
            info = activity.info()
            entry |= {"workflow_id": info.workflow_id, "activity_id": info.activity_id, "attempt": info.attempt}
        with tracer.start_as_current_span(f"provider {call}") as span:
            span.set_attribute("atelier.provider", entry["provider"])
            span.set_attribute("atelier.model_call", call)
            if model := self.model_for(call):
                span.set_attribute("atelier.model", model)
                entry["model"] = model
            if self.model_id:
                entry["model_id"] = self.model_id
            notes = usage.CallNotes()
            used: Usage | None = None
            try:
                result = await work(notes)
                entry["ok"] = True
                used = usage.priced(notes, self.prices, self.named)
                return Metered(value=result, usage=used, model=self.made_by(call))
            except BaseException as exc:
                entry |= {"ok": False, "error": type(exc).__name__}
                raise
            finally:
                entry["ms"] = round((time.monotonic() - started) * 1000, 1)
                if used is None:  # a failed call may have used (and cost) some
                    used = usage.priced(notes, self.prices, self.named)
                entry |= {"tokens": [used.input_tokens, used.output_tokens], "images": used.images}
                entry["cost_usd"] = used.estimated_cost_usd
                entry["cost_source"] = notes.cost_source
                spent(used)  # carried to the next attempt and in this attempt's failure
                describe_span(span, entry["ms"], used)
                await self.log.write(entry)
                count_call(call, entry["provider"], entry["ok"], entry["ms"], used)

    async def structured(
        self,
        schema: type[T],
        instructions: str,
        prompt: str,
        context: BaseModel | None = None,
        max_cost_usd: float | None = None,
        stream: TextStream | None = None,
    ) -> Metered[T]:
        return await self._record(
            f"structured:{schema.__name__}",
            lambda notes: self.inner.structured(
                schema,
                instructions,
                prompt,
                context,
                cap_left(max_cost_usd),
                notes,
                **({"stream": stream} if stream else {}),
            ),
        )

    async def generate_image(
        self,
        prompt: str,
        options: ImageOptions,
        references: list[ReferenceInput],
        previous_response_id: str | None,
        max_cost_usd: float | None = None,
    ) -> Metered[GeneratedBytes]:
        return await self._record(
            "generate_image",
            lambda notes: self.inner.generate_image(
                prompt, options, references, previous_response_id, cap_left(max_cost_usd), notes
            ),
        )

    async def evaluate_image(
        self, image: bytes, content_type: str, prompt: str, max_cost_usd: float | None = None
    ) -> Metered[Evaluation]:
        return await self._record(
            "evaluate_image",
            lambda notes: self.inner.evaluate_image(image, content_type, prompt, cap_left(max_cost_usd), notes),
        )

    async def refine_prompt(self, request: RefinePromptRequest) -> Metered[RefinedPrompt]:
        def refine(notes: usage.CallNotes) -> Coroutine[Any, Any, RefinedPrompt]:
            capped = request.model_copy(update={"max_cost_usd": cap_left(request.max_cost_usd)})
            return self.inner.refine_prompt(capped, notes)

        return await self._record("refine_prompt", refine)


def _scheduled_at() -> float:
    """When Temporal first scheduled the running activity (now, outside an activity), as a Unix time."""
    if not activity.in_activity():
        return time.time()
    scheduled = activity.info().scheduled_time
    return (scheduled if scheduled.tzinfo else scheduled.replace(tzinfo=UTC)).timestamp()

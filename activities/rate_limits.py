"""A provider's rate limit is back-pressure, never a failure.

The Temporal server paces each paid-call queue at the configured requests per minute across all
workers (`max_task_queue_activities_per_second`). When the provider still answers 429, the call
waits for as long as the provider says (`retry-after-ms`, `retry-after`, `x-ratelimit-reset-*`) and
tries again inside the same activity attempt, so no attempt meant for real errors is used up. The
worker's other calls of the same kind wait behind the same `Gate`, and once it reopens they go one
at a time, spaced at the configured rate: no retry storm.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from collections.abc import Callable, Mapping
from datetime import timedelta

from temporalio.exceptions import ApplicationError

DEFAULT_WAIT_S = 1.0
RESET_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class RateLimited(ApplicationError):
    """The provider said: too many requests, wait `wait_s`. Retryable after that delay."""

    def __init__(self, message: str, wait_s: float) -> None:
        super().__init__(message, type="RateLimited", next_retry_delay=timedelta(seconds=wait_s))
        self.wait_s = wait_s


def retry_after(headers: Mapping[str, str] | None) -> timedelta | None:
    """Parse `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if not headers:
        return None
    if ms := headers.get("retry-after-ms"):
        try:
            return timedelta(milliseconds=max(0.0, float(ms)))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return timedelta(seconds=max(0.0, float(value)))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return timedelta(seconds=max(0.0, email.utils.mktime_tz(parsed) - time.time()))


def reset_seconds(value: str) -> float | None:
    """`x-ratelimit-reset-*` durations: '1s', '6m0s', '20ms', '1h2m3.5s'."""
    parts = RESET_PART.findall(value.strip())
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        return None
    return sum(float(number) * UNIT_S[unit] for number, unit in parts)


def wait_seconds(headers: Mapping[str, str] | None) -> float | None:
    """How long the provider asks us to wait: retry-after-ms, retry-after, else the latest reset of a
    spent `x-ratelimit-*` window. None when the headers say nothing."""
    if (delay := retry_after(headers)) is not None:
        return delay.total_seconds()
    if not headers:
        return None
    resets = []
    for window in ("requests", "tokens", "images"):
        reset = headers.get(f"x-ratelimit-reset-{window}")
        remaining = headers.get(f"x-ratelimit-remaining-{window}")
        if reset and remaining in (None, "0"):
            seconds = reset_seconds(reset)
            if seconds is not None:
                resets.append(seconds)
    return max(resets) if resets else None


class Gate:
    """One kind of call (text or image) to one provider, in one worker process.

    `close_for(s)` holds every call of this kind for `s` seconds. `wait_turn()` returns once the gate is
    open. When the kind has a configured rate (`spacing_s` = its interval), calls then leave at most one
    per `spacing_s` for `PACE_AFTER_REFUSAL_S` after a refusal, so the refused call trying again does not
    collide with the next one the server dispatches at that rate.
    """

    PACE_AFTER_REFUSAL_S = 30.0

    def __init__(self, name: str, spacing_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.spacing_s = spacing_s
        self.clock = clock
        self._until = 0.0
        self._pace_until = 0.0

    def pace(self, spacing_s: float) -> None:
        """From now on every call leaves at most once per `spacing_s` (a limit the provider told us)."""
        self.spacing_s = spacing_s
        self._pace_until = float("inf")

    def close_for(self, seconds: float) -> None:
        self._until = max(self._until, self.clock() + max(seconds, 0.0))
        self._pace_until = max(self._pace_until, self._until + self.PACE_AFTER_REFUSAL_S)

    async def wait_turn(self) -> float:
        """Wait until this call may go; returns the seconds waited."""
        started = self.clock()
        while (left := self._until - self.clock()) > 0:
            await asyncio.sleep(left)
        if self.spacing_s and self.clock() < self._pace_until:
            self._until = self.clock() + self.spacing_s
        return self.clock() - started


def kind_of(call: str) -> str:
    """`image` for image generation, `text` for every other model call."""
    return "image" if call == "generate_image" else "text"


class Gates:
    """The worker's gates: text calls and image calls."""

    def __init__(self, text_rpm: float = 0, image_rpm: float = 0) -> None:
        self.text = Gate("text rate limit", 60 / text_rpm if text_rpm else 0.0)
        self.image = Gate("image rate limit", 60 / image_rpm if image_rpm else 0.0)
        self._by_endpoint: dict[tuple[str, str], Gate] = {}

    def for_call(self, call: str, endpoint: str | None = None) -> Gate:
        """The gate a model call waits at: its kind's, or with `endpoint` named, that endpoint's (a 429 from
        one server holds back only the calls to it; the configured rate applies to each)."""
        gate = self.image if kind_of(call) == "image" else self.text
        if endpoint is None:
            return gate
        key = (kind_of(call), endpoint)
        if key not in self._by_endpoint:
            self._by_endpoint[key] = Gate(f"{gate.name} at {endpoint}", gate.spacing_s)
        return self._by_endpoint[key]

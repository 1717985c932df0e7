"""Circuit breakers, one per dependency (text model, image model, upload), shared by one worker process.

After `failures` failures in a row a breaker opens: calls fail at once with a retryable error whose
`next_retry_delay` is the time left until it half-opens, so Temporal waits instead of hammering a
service that is down. Once `reset_s` have passed one trial call goes through (half-open): success
closes the breaker, failure opens it for another `reset_s`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from enum import StrEnum

from temporalio.exceptions import ApplicationError

from activities.rate_limits import kind_of
from models.settings import Settings

NOT_A_SERVICE_FAILURE = {"InvalidModelOutput", "CircuitOpen", "RateLimited"}  # it answered, or was not called


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, name: str, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.threshold = failures
        self.reset_s = reset_s
        self.clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False  # a half-open trial call is in flight

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        return BreakerState.HALF_OPEN if self.clock() >= self._opened_at + self.reset_s else BreakerState.OPEN

    def _refuse(self, wait_s: float) -> ApplicationError:
        return ApplicationError(
            f"{self.name} circuit breaker is open after {self.threshold} failures in a row; next try in {wait_s:.1f} s",
            type="CircuitOpen",
            next_retry_delay=timedelta(seconds=max(wait_s, 0.1)),
        )

    def before_call(self) -> None:
        """Raise the fail-fast error while open; let one trial through when half-open."""
        state = self.state
        if state == BreakerState.OPEN:
            assert self._opened_at is not None
            raise self._refuse(self._opened_at + self.reset_s - self.clock())
        if state == BreakerState.HALF_OPEN:
            if self._trial:
                raise self._refuse(1.0)
            self._trial = True

    def succeeded(self) -> None:
        self._failures, self._opened_at, self._trial = 0, None, False

    def failed(self) -> None:
        self._failures += 1
        if self._trial or self._failures >= self.threshold:
            self._opened_at = self.clock()
        self._trial = False

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Run one call under the breaker; service failures count, other errors do not."""
        self.before_call()
        try:
            yield
        except ApplicationError as exc:
            if exc.type in NOT_A_SERVICE_FAILURE or exc.non_retryable:
                self._trial = False
            else:
                self.failed()
            raise
        except Exception:
            self.failed()
            raise
        except BaseException:  # cancelled: says nothing about the service
            self._trial = False
            raise
        self.succeeded()


def parse_rule(rule: str) -> tuple[int, float]:
    """'5/30' → 5 failures, 30 seconds."""
    count, _, seconds = rule.partition("/")
    failures, reset = int(count), float(seconds)
    if failures < 1 or reset <= 0:
        raise ValueError(f"breaker rule {rule!r}: need failures ≥ 1 and seconds > 0")
    return failures, reset


class Breakers:
    """The worker's breakers: text and image model calls, and uploads. An endpoint of its own (pictures or
    vision from another server) gets breakers of its own: one server's outage does not stop the other's calls."""

    def __init__(
        self, text: str = "5/30", image: str = "3/60", upload: str = "2/30", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rules = {"text": parse_rule(text), "image": parse_rule(image)}
        self.clock = clock
        self.text = CircuitBreaker("text model", *self.rules["text"], clock=clock)
        self.image = CircuitBreaker("image model", *self.rules["image"], clock=clock)
        self.upload = CircuitBreaker("upload", *parse_rule(upload), clock=clock)
        self._by_endpoint: dict[tuple[str, str], CircuitBreaker] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Breakers:
        return cls(settings.breaker_text, settings.breaker_image, settings.breaker_upload)

    def for_call(self, call: str, endpoint: str | None = None) -> CircuitBreaker:
        """The breaker a model call passes: its kind's, or with `endpoint` named, that endpoint's."""
        kind = kind_of(call)
        if endpoint is None:
            return self.image if kind == "image" else self.text
        key = (kind, endpoint)
        if key not in self._by_endpoint:
            name = f"{kind} model at {endpoint}"
            self._by_endpoint[key] = CircuitBreaker(name, *self.rules[kind], clock=self.clock)
        return self._by_endpoint[key]

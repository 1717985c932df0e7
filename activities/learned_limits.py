"""Rate limits learned from the provider, for users who never configured theirs.

Hosted providers say their limit on every response (`x-ratelimit-limit-requests`, per minute for OpenAI
and compatible servers). With no `ATELIER_TEXT_RPM` / `ATELIER_IMAGE_RPM` set, the worker takes that limit
(a little under it) as the paid queue's rate limit on the Temporal server, through the same API as
`temporal task-queue config set --queue-rps-limit`: the server then paces every worker process together,
and `status` shows the limit. Where the provider sends no limit, a 429 is the signal: each worker process
paces itself a little under the rate that was getting through (multiplicative decrease) and raises it a
tenth per minute without refusals. A configured RPM always wins.

Limits are per model: each catalog model's provider has its own learner (two models on one endpoint each
learn their own limit). A queue that serves several models of a kind cannot take one model's limit: there
each worker process paces each model itself (the kind is not in `owns`), as on a server that cannot set it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Collection, Mapping
from contextvars import ContextVar

from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import RateLimit
from temporalio.api.workflowservice.v1 import UpdateTaskQueueConfigRequest
from temporalio.service import RPCError

from models.settings import IMAGE_QUEUE, TEXT_QUEUE

log = logging.getLogger(__name__)
HEADROOM = 0.9  # the queue runs this much under the provider's limit (calls in flight, clocks, bursts)
WINDOW_S = 60.0
QUEUE = {"text": TEXT_QUEUE, "image": IMAGE_QUEUE}

# the headers of the last provider response the current call saw (set by the client's response hook)
last_headers: ContextVar[Mapping[str, str] | None] = ContextVar("atelier_last_headers", default=None)


async def remember_headers(response: object) -> None:
    """httpx response hook: keep the response's headers for the call that is waiting on it."""
    last_headers.set(getattr(response, "headers", None))


def told_limit(headers: Mapping[str, str] | None) -> float | None:
    """Requests per minute the provider says it allows, if it says."""
    value = (headers or {}).get("x-ratelimit-limit-requests")
    try:
        return float(value) if value else None
    except ValueError:
        return None


class LimitLearner:
    def __init__(
        self, configured: Mapping[str, float], owns: Collection[str] = tuple(QUEUE), model: str | None = None
    ) -> None:
        self.configured = dict(configured)  # kind → the user's RPM (0: none, learn it)
        self.owns = frozenset(owns)  # kinds whose queue serves only its model: the queue's limit is its limit
        self.model = model  # the catalog model whose limits these are (None: the worker's only provider)
        self.limit: dict[str, float] = {}  # kind → the limit the provider told (under it), requests per minute
        self.inferred: dict[str, float] = {}  # kind → a pace inferred from 429s, for a provider that tells none
        self.applied: dict[str, float] = {}
        self.recent: dict[str, deque[float]] = {kind: deque() for kind in QUEUE}
        self.raised_at: dict[str, float] = {}
        self.answered: set[str] = set()  # kinds the provider has answered at least once
        self._lock = asyncio.Lock()
        self._unavailable = False

    def learning(self, kind: str) -> bool:
        return not self.configured.get(kind)

    def observe(self, kind: str, headers: Mapping[str, str] | None, refused: bool) -> None:
        """What one response said: its limit header, or (none sent) whether it was a 429."""
        if not self.learning(kind):
            return
        self.answered.add(kind)
        now = time.monotonic()
        recent = self.recent[kind]
        while recent and now - recent[0] > WINDOW_S:
            recent.popleft()
        if (rpm := told_limit(headers)) is not None:
            self.limit[kind] = rpm * HEADROOM
        elif refused and kind not in self.limit:  # no header: back off to what was getting through
            span = max(1.0, now - recent[0]) if recent else WINDOW_S
            through = len(recent) * 60 / span
            self.inferred[kind] = max(1.0, 0.8 * min(through, self.inferred.get(kind, float("inf"))))
            self.raised_at[kind] = now
        elif not refused and kind in self.inferred and now - self.raised_at[kind] >= WINDOW_S:
            self.inferred[kind] *= 1.1  # a minute without refusals: try a little more
            self.raised_at[kind] = now
        if not refused:
            recent.append(now)

    def pace(self, kind: str) -> float | None:
        """Requests per minute this process should keep to for `kind`, if anything says."""
        return self.limit.get(kind) or self.inferred.get(kind)

    def _set(self, kind: str, rpm: float) -> bool:
        """Whether the server already has this limit (within 1%)."""
        applied = self.applied.get(kind)
        return applied is not None and abs(applied - rpm) < 0.01 * rpm

    async def apply(self, kind: str) -> None:
        """Set the queue's server-side rate limit to what was learned, once per change (every worker process
        does the same: the server keeps one value)."""
        rpm = self.limit.get(kind)
        if rpm is None or kind not in self.owns or self._unavailable or self._set(kind, rpm):
            return  # checked before the lock: every call passes here
        if not activity.in_activity():
            return
        async with self._lock:
            if self._set(kind, rpm):
                return
            self.applied[kind] = rpm
            client = activity.client()
            request = UpdateTaskQueueConfigRequest(
                namespace=client.namespace,
                identity=client.identity,
                task_queue=QUEUE[kind],
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                update_queue_rate_limit=UpdateTaskQueueConfigRequest.RateLimitUpdate(
                    rate_limit=RateLimit(requests_per_second=rpm / 60),
                    reason="learned from the provider's x-ratelimit-limit-requests",
                ),
            )
            try:
                await client.workflow_service.update_task_queue_config(request)
            except RPCError as exc:  # an older server: each process paces itself after refusals instead
                self._unavailable = True
                log.warning("cannot set %s's rate limit on the server (%s)", QUEUE[kind], exc.message)
                return
            log.info("%s rate limit learned from the provider: %.0f requests/min", QUEUE[kind], rpm)

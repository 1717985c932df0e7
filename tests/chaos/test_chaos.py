"""The short, seeded crash matrix that runs in `make test` (the long one is `make chaos`)."""

from __future__ import annotations

import pytest

from tests.chaos.harness import Trial, run_trial
from workflows.options import HEARTBEAT_TIMEOUT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "trial",
    [
        Trial(101, "world", "worker"),
        Trial(102, "image", "server"),
        Trial(103, "meme", "worker"),
        Trial(104, "chat", "server"),
    ],
    ids=lambda t: f"{t.pipeline}-{t.victim}",
)
async def test_kill_mid_run_loses_and_repeats_nothing(trial, tmp_path):
    outcome = await run_trial(trial, tmp_path)
    assert outcome.error == ""
    assert outcome.completed
    assert outcome.duplicates == 0 and outcome.lost == 0
    # up to ~9 s idle (the 8 s heartbeat timeout and a 1 s retry, or a restarted server's reconnect); the bound
    # leaves room for a busy machine yet stays far below what a missing heartbeat would cost (the call's timeout)
    bound = HEARTBEAT_TIMEOUT.total_seconds() + 20
    assert outcome.recovery_s is not None and outcome.recovery_s < bound, "in-flight work restarts within seconds"

"""The short, seeded crash matrix that runs in `make test` (the long one is `make chaos`)."""

from __future__ import annotations

import pytest

from tests.chaos.harness import Trial, run_trial

RECOVERY_GOAL_S = 12  # kill -> next model call, for every pipeline (the chaos matrix's goal)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "trial",
    [
        Trial(101, "world", "worker"),
        Trial(102, "image", "server"),
        Trial(103, "chat", "worker"),  # the turn's call is almost always in flight: it waits on the heartbeat
        Trial(104, "meme", "server"),
    ],
    ids=lambda t: f"{t.pipeline}-{t.victim}",
)
async def test_kill_mid_run_loses_and_repeats_nothing(trial, tmp_path):
    outcome = await run_trial(trial, tmp_path)
    assert outcome.error == ""
    assert outcome.completed
    assert outcome.duplicates == 0 and outcome.lost == 0
    # a killed worker's call in flight is retried within 10 s (the 8 s heartbeat timeout and a 1 s retry) and a
    # restarted server answers in a few once it listens; the goal is 12 s from the victim being back (a busy
    # machine takes its own time to start a server), with a little more for a busy CI machine
    bound = RECOVERY_GOAL_S + 3
    assert outcome.recovery_s is not None, "in-flight work restarts"
    assert outcome.recovery_s - outcome.back_s < bound, f"in-flight work restarts within seconds: {outcome}"

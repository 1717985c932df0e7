"""Recorded histories must replay against today's workflow code (determinism check)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers.registry import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_workflow_has_a_recorded_history():
    recorded = [WorkflowHistory.from_json(p.stem, p.read_text()).events[0] for p in HISTORIES]
    types = {e.workflow_execution_started_event_attributes.workflow_type.name for e in recorded}
    missing = {w.__temporal_workflow_definition.name for w in WORKFLOWS} - types  # type: ignore[attr-defined]
    assert not missing, f"record them with `python -m tests.record_history`: {sorted(missing)}"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None

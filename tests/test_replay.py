"""Recorded histories must replay against today's workflow code (determinism check)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.record_history import free_name
from workers.registry import WORKFLOWS
from workflows.budget import BOOK_FAILED_ATTEMPTS_PATCH, BUDGET_PATCH, BY_KIND_PATCH
from workflows.casting import NEAR_COPIES_OPTIONAL_PATCH
from workflows.conversation import CARRIED_FIRST_PATCH, END_AFTER_HAND_OVER_PATCH, HAND_OVER_PATCH
from workflows.failures import CANCEL_PATCH
from workflows.feedback import FEEDBACK_CAP_PATCH
from workflows.image_evaluation import SCORING_DEGRADES_PATCH
from workflows.image_refinement import REFUSAL_PATCH, UPLOADS_PATCH
from workflows.scoring import POLLERS_PATCH
from workflows.turn_stream import STREAM_PATCH
from workflows.world_progress import PROGRESS_PATCH

PATCHES = (
    BUDGET_PATCH,
    PROGRESS_PATCH,
    END_AFTER_HAND_OVER_PATCH,
    HAND_OVER_PATCH,
    SCORING_DEGRADES_PATCH,
    REFUSAL_PATCH,
    STREAM_PATCH,
    CANCEL_PATCH,
    NEAR_COPIES_OPTIONAL_PATCH,
    BY_KIND_PATCH,
    CARRIED_FIRST_PATCH,
    POLLERS_PATCH,
    BOOK_FAILED_ATTEMPTS_PATCH,
    UPLOADS_PATCH,
    FEEDBACK_CAP_PATCH,
)

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_workflow_has_a_recorded_history():
    recorded = [WorkflowHistory.from_json(workflow_id(p), p.read_text()).events[0] for p in HISTORIES]
    types = {e.workflow_execution_started_event_attributes.workflow_type.name for e in recorded}
    missing = {w.__temporal_workflow_definition.name for w in WORKFLOWS} - types  # type: ignore[attr-defined]
    assert not missing, f"record them with `python -m tests.record_history`: {sorted(missing)}"


def workflow_id(path: Path) -> str:
    """The recorded run's workflow id: the file's name up to a version suffix (`recorded-world@2.json`)."""
    return path.stem.split("@")[0]


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path):
    history = WorkflowHistory.from_json(workflow_id(path), path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None


def test_recording_again_never_overwrites_a_history(tmp_path):
    assert free_name("recorded-world", tmp_path).name == "recorded-world.json"
    (tmp_path / "recorded-world.json").write_text("{}")
    (tmp_path / "recorded-world@2.json").write_text("{}")
    assert free_name("recorded-world", tmp_path).name == "recorded-world@3.json"
    assert workflow_id(tmp_path / "recorded-world@3.json") == "recorded-world"


def test_the_corpus_holds_the_paths_that_matter():
    """Budget exhausted, cancelled, failed steps, a hand-over with queued messages ended during the next one,
    no scoring worker; each patch's new branch is in at least one history."""
    names = {workflow_id(p) for p in HISTORIES}
    wanted = {
        "recorded-world-budget",
        "recorded-world-partial",
        "recorded-image-cancelled",
        "recorded-image-no-scoring",
        "recorded-conversation-hand-over",
        "recorded-image-refused",
    }
    assert wanted <= names, sorted(wanted - names)
    recorded = set()
    for path in HISTORIES:
        for event in json.loads(path.read_text())["events"]:
            if marker := event.get("markerRecordedEventAttributes"):
                data = marker["details"]["patch-data"]["payloads"][0]["data"]
                recorded.add(json.loads(base64.b64decode(data))["id"])
    assert set(PATCHES) <= recorded, f"no history takes the new branch of {sorted(set(PATCHES) - recorded)}"

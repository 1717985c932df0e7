"""Recorded histories must replay against today's workflow code (determinism check)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.record_history import free_name
from workers.registry import WORKFLOWS
from workflows import patches

PATCHES = tuple(patch.id for patch in patches.PATCHES)
DRAINED = {name: patch for patch in patches.PATCHES for name in patch.drained}  # their runs are gone

REGISTERED = {w.__temporal_workflow_definition.name for w in WORKFLOWS}  # type: ignore[attr-defined]
HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_workflow_has_a_recorded_history():
    recorded = [WorkflowHistory.from_json(workflow_id(p), p.read_text()).events[0] for p in HISTORIES]
    types = {e.workflow_execution_started_event_attributes.workflow_type.name for e in recorded}
    missing = REGISTERED - types
    assert not missing, f"record them with `python -m tests.record_history`: {sorted(missing)}"


def workflow_id(path: Path) -> str:
    """The recorded run's workflow id: the file's name up to a version suffix (`recorded-world@2.json`)."""
    return path.stem.split("@")[0]


def patch_markers(path: Path) -> tuple[str, set[str]]:
    """A recorded history's workflow type and the ids of the patches its markers record."""
    events = json.loads(path.read_text())["events"]
    ids = set()
    for event in events:
        if marker := event.get("markerRecordedEventAttributes"):
            data = marker["details"]["patch-data"]["payloads"][0]["data"]
            ids.add(json.loads(base64.b64decode(data))["id"])
    return events[0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"], ids


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path):
    if (patch := DRAINED.get(path.stem)) is not None:
        pytest.skip(f"recorded before {patch.id}, now {patch.stage}: its runs are drained (kept, never replayed)")
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
    recorded = {patch_id for path in HISTORIES for patch_id in patch_markers(path)[1]}
    assert set(PATCHES) <= recorded, f"no history takes the new branch of {sorted(set(PATCHES) - recorded)}"


def test_each_patch_id_is_registered_once():
    """One registry entry per id; drained histories only for patches past `workflow.patched`, and all kept."""
    assert len(set(PATCHES)) == len(PATCHES), "a patch id is never reused"
    defined = {value for value in vars(patches).values() if isinstance(value, patches.Patch)}
    assert defined == set(patches.PATCHES), "every patch constant is in the registry"
    stems = {p.stem for p in HISTORIES}
    for patch in patches.PATCHES:
        assert not patch.drained or patch.stage != "patched", f"{patch.id}: its old runs may still replay"
        assert set(patch.drained) <= stems, f"{patch.id}: histories are never deleted"


def test_the_workflows_branch_only_on_registered_patches():
    """Every `workflow.patched` / `deprecate_patch` call takes a registry constant, as its stage says; no id
    is written as a string in the workflows."""
    sources = {p.name: p.read_text() for p in (Path(__file__).parent.parent / "workflows").glob("*.py")}
    calls = {
        stage: {name for text in sources.values() for name in re.findall(rf"workflow\.{call}\((\w+)\.id\)", text)}
        for stage, call in (("patched", "patched"), ("deprecated", "deprecate_patch"))
    }
    for patch in patches.PATCHES:
        name = next(name for name, value in vars(patches).items() if value is patch)
        for stage, called in calls.items():
            assert (name in called) == (patch.stage == stage), f"{patch.id} is {patch.stage}: {name} in {stage}"
    by_string = [
        name
        for name, text in sources.items()
        if re.search(r"workflow\.(patched|deprecate_patch)\((?!\w+\.id\))", text)
        or (name != "patches.py" and any(f'"{patch_id}"' in text for patch_id in PATCHES))
    ]
    assert not by_string, f"a patch id written as a string, not taken from workflows.patches: {by_string}"


def test_each_patch_names_the_workflow_types_that_branch_on_it():
    """The registry's workflow types are registered, and every history's markers are of patches its type is
    listed under."""
    by_id = {patch.id: patch for patch in patches.PATCHES}
    for patch in patches.PATCHES:
        assert set(patch.workflows) <= REGISTERED, patch.id
    for path in HISTORIES:
        workflow_type, ids = patch_markers(path)
        unlisted = sorted(i for i in ids if workflow_type not in by_id[i].workflows)
        assert not unlisted, f"{path.stem}: {workflow_type} branches on {unlisted}, not listed in workflows.patches"

"""Task-queue priority and fairness for each run.

When a paid-call queue has a backlog (a rate limit holds it back), interactive work goes first and
runs share what is left fairly: every run is started with its pipeline's priority key and a fairness
key naming the run. Its activities and child workflows inherit both, so a world and all of its
characters count as one run.
"""

from __future__ import annotations

import hashlib

from temporalio.common import Priority

from models.pipelines import PIPELINES

# 1 goes first. A chat turn is waited on by a person; a world is batch work (each pipeline's: `models.pipelines`);
# an experiment's cells (each a pipeline's run: `workflows.experiment`) go after every interactive run.
PRIORITY_KEYS = (
    {"conversation": 1, "knowledge": 2} | {spec.name: spec.priority for spec in PIPELINES.values()} | {"experiment": 5}
)
FAIRNESS_KEY_BYTES = 64  # Temporal's limit


def fairness_key(workflow_id: str) -> str:
    """The run's id, or a stable digest of it when it is longer than Temporal allows."""
    if len(workflow_id.encode()) <= FAIRNESS_KEY_BYTES:
        return workflow_id
    return (
        workflow_id.encode()[:40].decode(errors="ignore") + "~" + hashlib.sha256(workflow_id.encode()).hexdigest()[:16]
    )


def run_priority(pipeline: str, workflow_id: str, tenant: str | None = None) -> Priority:
    """A run started through the HTTP API shares by tenant: one tenant's backlog does not starve another's."""
    return Priority(priority_key=PRIORITY_KEYS[pipeline], fairness_key=fairness_key(tenant or workflow_id))

"""The signal KEDA scales the image workers on, read the way its temporal scaler reads it for unversioned workers
(DescribeTaskQueue with stats, the approximate backlog summed over the trigger's queueTypes), from a dev
server running Atelier's own workflows: it rises while image runs wait for an image worker and falls to
nothing as one drains them; with deploy/keda's ScaledObject the replicas asked for follow it."""

from __future__ import annotations

import math
import uuid

import pytest
import yaml
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore
from models.image import ImageJob
from models.settings import IMAGE_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE
from tests.conftest import eventually, running_workers
from tests.k8s_support import DEPLOY
from workflows.image_refinement import ImageRefinementWorkflow

TYPES = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    "nexus": TaskQueueType.TASK_QUEUE_TYPE_NEXUS,
}


def scaled_object(file: str) -> dict:
    (doc,) = [doc for doc in yaml.safe_load_all((DEPLOY / "keda" / "scaledobjects" / file).read_text()) if doc]
    return doc


async def backlog(client: Client, trigger: dict[str, str]) -> int:
    """What the scaler reports for `trigger`: each queue type's approximate backlog, added up."""
    total = 0
    for kind in trigger["queueTypes"].split(","):
        request = DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=trigger["taskQueue"], kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TYPES[kind],
            report_stats=True,
        )
        total += (await client.workflow_service.describe_task_queue(request)).stats.approximate_backlog_count
    return total


def replicas_asked(backlog: int, spec: dict) -> int:
    """The HPA's answer to KEDA's metric (an average value: backlog per replica = targetQueueSize), held within
    minReplicaCount..maxReplicaCount. At or under the activation threshold KEDA deactivates: min again."""
    trigger = spec["triggers"][0]["metadata"]
    if backlog <= int(trigger["activationTargetQueueSize"]):
        return spec["minReplicaCount"]
    wanted = math.ceil(backlog / int(trigger["targetQueueSize"]))
    return max(spec["minReplicaCount"], min(spec["maxReplicaCount"], wanted))


@pytest.mark.slow  # waits on the server's statistics, refreshed every few seconds
async def test_the_image_backlog_rises_with_waiting_pictures_and_falls_as_a_worker_drains_it(dev_env, tmp_path):
    spec = scaled_object("images.yaml")["spec"]
    trigger = spec["triggers"][0]["metadata"]
    assert trigger["taskQueue"] == IMAGE_QUEUE and trigger["queueTypes"] == "activity"
    client, store, provider = dev_env.client, LocalStore(tmp_path), OfflineProvider()
    runs = 2 * int(trigger["targetQueueSize"]) + 1
    async with running_workers(client, provider, store, [WORKFLOW_QUEUE, TEXT_QUEUE, STORAGE_QUEUE]):
        assert await backlog(client, trigger) == 0
        job = ImageJob(prompt="a kite over dunes", max_iterations=1, scoring_wait_s=5)
        handles = [
            await client.start_workflow(
                ImageRefinementWorkflow.run, job, id=f"backlog-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
            )
            for _ in range(runs)
        ]

        async def queued() -> int:  # every run waits on its picture: no image worker polls
            return (count := await backlog(client, trigger)) >= runs and count

        assert await eventually(queued, 60, f"{runs} pictures in the backlog", every=0.5) == runs
        assert replicas_asked(runs, spec) == 3 > spec["minReplicaCount"], "KEDA would add two image workers"

        async with running_workers(client, provider, store, [IMAGE_QUEUE]):

            async def drained() -> bool:
                return await backlog(client, trigger) == 0

            await eventually(drained, 60, "an image worker to drain the backlog", every=0.5)
            assert replicas_asked(0, spec) == spec["minReplicaCount"] == 1, "back to one, never to zero"
            results = [await handle.result() for handle in handles]
    assert all(result.iterations and result.iterations[0].image for result in results), "each picture was made"

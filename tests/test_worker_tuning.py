"""Worker tuning from settings (slots per queue, pollers that scale) and the Worker Deployment version a pod of
Temporal's worker controller is handed (TEMPORAL_DEPLOYMENT_NAME, TEMPORAL_WORKER_BUILD_ID)."""

from __future__ import annotations

import contextlib
import os

import pytest
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest
from temporalio.service import RPCError
from temporalio.worker import PollerBehaviorAutoscaling

from activities.providers import make_provider
from kit.storage import LocalStore
from models.settings import EVENTS_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE, Settings
from tests.conftest import eventually
from workers.registry import build_workers
from workers.versioning import default_build_id, deployment_version

TUNED = {
    "ATELIER_MAX_POLLERS": "7",
    "ATELIER_WORKFLOW_CONCURRENCY": "40",
    "ATELIER_TEXT_CONCURRENCY": "30",
    "ATELIER_IMAGE_CONCURRENCY": "6",
    "ATELIER_STORAGE_CONCURRENCY": "12",
    "ATELIER_EVENTS_CONCURRENCY": "90",
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith(("ATELIER_", "TEMPORAL_DEPLOYMENT", "TEMPORAL_WORKER")):
            monkeypatch.delenv(key)
    return monkeypatch


async def test_slots_and_pollers_per_queue_come_from_the_settings(module_dev_env, tmp_path, clean_env):
    for key, value in TUNED.items():
        clean_env.setenv(key, value)
    settings = Settings(ATELIER_DATA_DIR=str(tmp_path), _env_file=None)
    queues = [WORKFLOW_QUEUE, TEXT_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE, EVENTS_QUEUE]
    workers = build_workers(module_dev_env.client, queues, make_provider(settings), LocalStore(tmp_path), settings)
    config = {worker.task_queue: worker.config() for worker in workers}
    assert set(config) == set(queues)
    scaling = PollerBehaviorAutoscaling(minimum=1, initial=5, maximum=7)
    assert config[WORKFLOW_QUEUE]["max_concurrent_workflow_tasks"] == 40
    assert config[WORKFLOW_QUEUE]["workflow_task_poller_behavior"] == scaling
    slots = {queue: config[queue]["max_concurrent_activities"] for queue in queues[1:]}
    assert slots == {TEXT_QUEUE: 30, IMAGE_QUEUE: 6, STORAGE_QUEUE: 12, EVENTS_QUEUE: 90}
    assert all(config[queue]["activity_task_poller_behavior"] == scaling for queue in queues[1:])


def test_pollers_never_start_above_their_ceiling(clean_env):
    clean_env.setenv("ATELIER_MAX_POLLERS", "2")
    from workers.registry import pollers

    assert pollers(Settings(_env_file=None)) == PollerBehaviorAutoscaling(minimum=1, initial=2, maximum=2)


def test_the_worker_controllers_variables_win_over_atelier_s(clean_env):
    clean_env.setenv("ATELIER_DEPLOYMENT", "atelier")
    clean_env.setenv("ATELIER_BUILD_ID", "v7")
    assert deployment_version(Settings(_env_file=None)).deployment_name == "atelier"
    clean_env.setenv("TEMPORAL_DEPLOYMENT_NAME", "atelier/atelier-text")
    clean_env.setenv("TEMPORAL_WORKER_BUILD_ID", "5b8f6c7d9")
    version = deployment_version(Settings(_env_file=None))
    assert (version.deployment_name, version.build_id) == ("atelier/atelier-text", "5b8f6c7d9")
    clean_env.delenv("ATELIER_BUILD_ID")
    clean_env.delenv("TEMPORAL_WORKER_BUILD_ID")
    version = deployment_version(Settings(_env_file=None))
    assert version.build_id == default_build_id(), "no build id handed over: ours, the workflow code's digest"


async def test_workers_poll_as_the_version_the_controller_hands_them(module_dev_env, tmp_path, clean_env):
    clean_env.setenv("TEMPORAL_DEPLOYMENT_NAME", "atelier/atelier-storage")
    clean_env.setenv("TEMPORAL_WORKER_BUILD_ID", "c0ffee12")
    settings = Settings(ATELIER_DATA_DIR=str(tmp_path), _env_file=None)
    client = module_dev_env.client
    request = DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name="atelier/atelier-storage")

    async def build_ids() -> set[str]:
        try:
            described = await client.workflow_service.describe_worker_deployment(request)
        except RPCError:
            return set()
        return {summary.deployment_version.build_id for summary in described.worker_deployment_info.version_summaries}

    workers = build_workers(client, [STORAGE_QUEUE], make_provider(settings), LocalStore(tmp_path), settings)
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        assert await eventually(build_ids, 30, "the server to list the handed version") == {"c0ffee12"}

"""`python -m starter live WORLD_ID --ticks 3` end to end: a world made by the real CLI and worker lives three ticks,
its progress on stderr and its result on stdout; bad arguments and an unknown world are one line and exit 2."""

from __future__ import annotations

import json

import pytest

from models.settings import EVENTS_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE
from tests.conftest import address_of, atelier_env, cli_main, run_cli, start_worker

pytestmark = pytest.mark.slow

QUEUES = (WORKFLOW_QUEUE, TEXT_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE, EVENTS_QUEUE)  # no scoring worker: no torch


async def test_live_command_lives_a_world_made_by_the_cli(dev_env, tmp_path):
    env = atelier_env(tmp_path, address_of(dev_env))
    start_worker(env, tmp_path / "worker.log", QUEUES)  # stopped when the test ends
    made = run_cli("world", "A harbour town of kite builders", "--characters", "4", "--posts", "1", "--no-images",
                   "--id", "world-cli", "--out", str(tmp_path / "out"), env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr

    lived = run_cli("live", "world-cli", "--ticks", "3", "--active-share", "0.5", env=env)
    assert lived.returncode == 0, lived.stderr
    result = json.loads(lived.stdout)
    assert result["life_id"] == "life-cli" and result["world_id"] == "world-cli"
    assert result["state"] == "completed" and result["status"]["tick"] == result["status"]["ticks"] == 3
    assert sum(result["status"]["actions"].values()) == 3 * 2  # 2 of the 4 characters act each tick
    assert "tick 3 of 3" in lived.stderr and "life life-cli: completed at tick 3 of 3" in lived.stderr
    assert "Traceback" not in lived.stderr

    again = run_cli("live", "world-cli", "--ticks", "3", env=env)  # the life exists: its result again
    assert again.returncode == 0 and json.loads(again.stdout) == result and "already exists" in again.stderr

    status = json.loads(run_cli("status", "life-cli", env=env).stdout)
    assert status["workflow_type"] == "LifeWorkflow" and status["state"]["tick"] == 3


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--ticks", "0"], "--ticks"),
        (["--ticks", "1001"], "--ticks"),
        (["--tick", "soon"], "--tick"),
        (["--active-share", "0"], "--active-share"),
        (["--batch-size", "51"], "--batch-size"),
        (["--model", "no-such-model"], "--model"),
    ],
)
async def test_a_bad_argument_is_one_line_naming_its_flag(module_dev_env, tmp_path, args, names):
    env = atelier_env(tmp_path, address_of(module_dev_env))
    done = cli_main("live", "world-any", *args, env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and names in done.stderr


async def test_an_unknown_world_or_a_run_that_is_no_world_is_one_line(module_dev_env, tmp_path):
    env = atelier_env(tmp_path, address_of(module_dev_env))
    done = cli_main("live", "world-nowhere", "--ticks", "3", env=env)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "error: no run with id 'world-nowhere'\n"
    assert not await _exists(module_dev_env.client, "life-nowhere"), "no life was started"

    # a run of another pipeline (never run: no worker polls its queue) is no world either
    await module_dev_env.client.start_workflow("ImageRefinementWorkflow", {}, id="image-1", task_queue="nobody")
    done = cli_main("live", "image-1", env=env)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "error: 'image-1' is no world: it is a run of ImageRefinementWorkflow\n"
    assert not await _exists(module_dev_env.client, "image-1-life")


async def _exists(client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except Exception:
        return False
    return True

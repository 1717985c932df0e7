"""The world pipeline through the real CLI and worker processes: end to end, bad input, crash."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from collections import Counter

import pytest
from PIL import Image

from activities.providers.call_log import read_log
from models.world import WorldManifest, WorldState
from tests.conftest import ROOT, address_of, atelier_env, completed_steps, run_cli, spawn, start_worker, wait_for
from workflows.world import WorldWorkflow

pytestmark = pytest.mark.slow

PROMPT = "A floating archipelago run by cartographer guilds"


async def test_world_command_end_to_end(dev_env, tmp_path):
    env = atelier_env(tmp_path, address_of(dev_env))
    worker = start_worker(env, tmp_path / "worker.log")
    out = tmp_path / "out"
    try:
        args = ["world", PROMPT, "--characters", "3", "--posts", "3", "--id", "w-e2e", "--out", str(out)]
        done = run_cli(*args, env=env)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["workflow_id"] == "w-e2e" and summary["status"] == "COMPLETED"
        assert summary["characters"] == {"planned": 3, "created": 3}
        assert summary["posts"]["created"] == summary["posts"]["planned"] >= 3
        assert summary["images"]["created"] == summary["images"]["planned"] >= 5
        assert summary["failures"] == [] and summary["gallery"] == str(out / "index.html")
        assert "profiles" in done.stderr and "posts" in done.stderr  # the live bars

        manifest = WorldManifest.model_validate_json((out / "manifest.json").read_text())
        assert manifest.state == WorldState.COMPLETED and len(manifest.characters) == 3
        for name in ("world.json", "background.jpeg", "icon.jpeg", "index.html"):
            assert (out / name).is_file()
        html = (out / "index.html").read_text()
        for character in manifest.characters:
            folder = out / "characters" / character.username
            assert (folder / "profile.json").is_file()
            with Image.open(folder / "avatar.jpeg") as avatar:
                assert avatar.size == (1024, 1024)
            assert f'src="characters/{character.username}/avatar.jpeg"' in html
            for post in character.posts:
                assert (folder / "posts" / f"{post.number:03d}.json").is_file()
                assert (post.image is None) or (folder / "posts" / f"{post.number:03d}.jpeg").is_file()

        status = json.loads(run_cli("status", "w-e2e", env=env).stdout)
        assert status["workflow_type"] == "WorldWorkflow" and status["status"] == "completed"
        assert set(status["state"]["phases"].values()) == {"COMPLETED"}
        assert status["state"]["posts"] == summary["posts"]
        result = run_cli("result", "w-e2e", "--out", str(tmp_path / "again"), env=env)
        assert result.returncode == 0 and WorldManifest.model_validate_json(result.stdout) == manifest
        rerun = run_cli(*args, env=env)
        assert rerun.returncode == 0 and json.loads(rerun.stdout) == summary and "already exists" in rerun.stderr
    finally:
        worker.terminate()
        worker.wait(timeout=30)


async def test_worker_killed_mid_world_resumes_without_redoing_steps(dev_env, tmp_path):
    env = atelier_env(tmp_path, address_of(dev_env), ATELIER_OFFLINE_LATENCY_S="0.2")
    log = tmp_path / "data" / "logs" / "provider-calls.jsonl"
    first = start_worker(env, tmp_path / "worker-1.log")
    started = run_cli("world", PROMPT, "--characters", "4", "--posts", "6", "--id", "w-crash", "--detach", env=env)
    assert started.returncode == 0, started.stderr

    def posts_written() -> int:
        return sum(1 for e in read_log(log) if e["call"] == "structured:PostDetail" and e["ok"])

    wait_for(lambda: posts_written() >= 6, 90, "six posts before the crash")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    before = read_log(log)
    # finished = a model call logged and its activity completed in the server's history (the dead worker
    # can report nothing more)
    called = {(e["workflow_id"], e["activity_id"]) for e in before if e["ok"]}
    settled = called & await completed_steps(dev_env.client, {e["workflow_id"] for e in before})

    second = start_worker(env, tmp_path / "worker-2.log")
    try:
        handle = dev_env.client.get_workflow_handle_for(WorldWorkflow.run, "w-crash")
        result = await asyncio.wait_for(handle.result(), timeout=180)
    finally:
        second.terminate()
        second.wait(timeout=30)

    st = result.status
    assert result.state == WorldState.COMPLETED, st.failures
    assert st.posts.created == st.posts.planned and st.characters.created == 4
    manifest = WorldManifest.model_validate_json((tmp_path / "data" / "artifacts" / result.manifest.key).read_text())
    assert sum(len(c.posts) for c in manifest.characters) == st.posts.planned
    keys = [r.key for c in manifest.characters for r in (c.profile, c.avatar) if r]
    keys += [r.key for c in manifest.characters for p in c.posts for r in (p.post, p.image) if r]
    assert len(keys) == len(set(keys)), "no artifact key is used twice"

    ok = [e for e in read_log(log) if e["ok"]]
    per_step = Counter((e["workflow_id"], e["activity_id"]) for e in ok)
    assert settled and all(per_step[step] == 1 for step in settled), "finished steps were redone"
    in_flight = called - settled
    assert sum(per_step.values()) <= len(per_step) + len(in_flight)
    assert sum(1 for e in ok if e["call"] == "structured:PostDetail") <= st.posts.planned + len(in_flight)


def interruptible() -> None:
    """Ctrl-C as in a terminal, even when the tests run as a background job (which ignores SIGINT)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def test_ctrl_c_detaches_and_the_world_goes_on(dev_env, tmp_path):
    env = atelier_env(tmp_path, address_of(dev_env), ATELIER_OFFLINE_LATENCY_S="0.2")
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        cli = spawn(
            [sys.executable, "-m", "starter", "world", PROMPT, "--characters", "3", "--posts", "4", "--id", "w-int"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=interruptible,
        )  # fmt: skip
        handle = dev_env.client.get_workflow_handle_for(WorldWorkflow.run, "w-int")
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(cli.stderr.readline, "")), daemon=True)
        reader.start()
        wait_for(lambda: any(" | " in line for line in lines), 60, "the CLI to show progress")  # it is following
        cli.send_signal(signal.SIGINT)
        cli.wait(timeout=30)
        reader.join(timeout=10)
        err = "".join(lines)
        assert cli.returncode == 130, err
        assert "re-attach with `atelier result w-int`" in err and "Traceback" not in err
        result = await asyncio.wait_for(handle.result(), timeout=120)
        assert result.state == WorldState.COMPLETED
    finally:
        worker.terminate()
        worker.wait(timeout=30)

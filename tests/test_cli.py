"""The real CLI against an embedded dev server and a worker subprocess (offline provider)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT, address_of, atelier_env, run_cli, spawn, start_worker, wait_for

pytestmark = pytest.mark.slow

PROMPT = "A red barn under a starry night sky with a blue river"


async def list_ids(env) -> list[str]:
    return [wf.id async for wf in env.client.list_workflows()]


@pytest.fixture
def cli_env(dev_env, tmp_path):
    return atelier_env(tmp_path, address_of(dev_env))


async def test_image_command_end_to_end(dev_env, cli_env, tmp_path):
    umask = os.umask(0o022)  # the CLI and worker inherit it: every file they write is then 0644
    worker = start_worker(cli_env, tmp_path / "worker.log")
    try:
        out_dir = tmp_path / "out"
        args = ["image", PROMPT, "--max-iterations", "3", "--threshold", "100", "--out", str(out_dir),
                "--id", "e2e-1", "--size", "1536x1024", "--format", "webp"]  # fmt: skip
        done = run_cli(*args, env=cli_env)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert set(result) == {
            "best_image_url", "final_score", "prompt_history", "image_history", "feedback_history",
            "score_history", "response_ids", "workflow_id", "provider", "stopped_because", "usage",
            "budget_exhausted", "spend", "notes", "refusals",
        }  # fmt: skip
        assert result["budget_exhausted"] is False and result["spend"] is None and result["notes"] == []
        assert result["refusals"] == []
        assert result["usage"]["models"]["offline"]["calls"] == 3 + 3 + 2  # generate, evaluate ×3, refine ×2
        assert result["usage"]["images"] == 3 and "usage: " in done.stderr
        assert result["workflow_id"] == "e2e-1"
        assert result["provider"] == "offline"
        assert result["stopped_because"] == "max_iterations"
        assert result["prompt_history"][0] == PROMPT
        n = len(result["score_history"])
        assert n == 3
        assert all(len(result[k]) == n for k in ("prompt_history", "image_history", "feedback_history", "response_ids"))
        assert result["final_score"] == max(result["score_history"])
        best_index = result["score_history"].index(result["final_score"])
        for path in [*result["image_history"], result["best_image_url"]]:
            with Image.open(path) as image:
                assert image.format == "WEBP" and image.size == (1536, 1024)
            assert path.startswith(str(out_dir))
        with open(result["best_image_url"], "rb") as a, open(result["image_history"][best_index], "rb") as b:
            assert a.read() == b.read()
        written = [p for p in [*out_dir.rglob("*"), *(tmp_path / "data").rglob("*.webp")] if p.is_file()]
        assert len(written) >= 6 and {oct(p.stat().st_mode & 0o777) for p in written} == {"0o644"}
        page = (out_dir / "index.html").read_text()
        assert all(f"src='{Path(p).name}'" in page for p in result["image_history"])
        host, port = cli_env["TEMPORAL_ADDRESS"].rsplit(":", 1)  # the dev server's UI is at its port + 1000
        link = f"http://{host}:{int(port) + 1000}/namespaces/default/workflows/e2e-1"
        assert "iteration" in done.stderr and link in done.stderr

        again = run_cli(*args, env=cli_env)
        assert again.returncode == 0 and json.loads(again.stdout) == result
        assert "already exists" in again.stderr

        status = run_cli("status", "e2e-1", env=cli_env)
        assert json.loads(status.stdout)["status"] == "completed"
        assert json.loads(status.stdout)["state"]["scores"] == result["score_history"]
        assert run_cli("cancel", "e2e-1", env=cli_env).returncode == 2
        detached = run_cli("image", "a green tree", "--detach", "--id", "e2e-2", env=cli_env)
        assert detached.stdout.strip() == "e2e-2"
        fetched = run_cli("result", "e2e-2", env=cli_env)
        assert fetched.returncode == 0 and json.loads(fetched.stdout)["workflow_id"] == "e2e-2"
    finally:
        os.umask(umask)
        worker.terminate()
        assert worker.wait(timeout=30) == 0, "worker shuts down gracefully on SIGTERM"


def test_unreachable_server_is_a_clear_error(tmp_path):
    env = atelier_env(tmp_path, "127.0.0.1:1")
    done = run_cli("status", "x", env=env, timeout=60)
    assert done.returncode == 1 and "cannot reach Temporal" in done.stderr and "Traceback" not in done.stderr


def test_console_script_is_installed():
    assert (__import__("pathlib").Path(sys.executable).parent / "atelier").exists()


async def test_run_started_before_any_worker_says_so_and_finishes_when_one_comes(dev_env, cli_env, tmp_path):
    cli = spawn(
        [sys.executable, "-m", "starter", "meme", "mondays", "--format", "two-buttons"],
        cwd=ROOT, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(line for line in cli.stderr), daemon=True)  # type: ignore[union-attr]
    reader.start()
    # no worker yet: the run waits in Temporal, and the CLI says so (however long the machine takes)
    await asyncio.to_thread(wait_for, lambda: any("no worker is answering" in line for line in said), 120, "the note")
    assert cli.poll() is None, "the CLI waits for the run"
    worker = start_worker(cli_env, tmp_path / "worker.log")
    try:
        out = await asyncio.to_thread(cli.stdout.read)  # type: ignore[union-attr]
        await asyncio.to_thread(cli.wait, 120)
        reader.join(timeout=30)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert cli.returncode == 0 and json.loads(out)["format"] == "two-buttons"
    assert "".join(said).count("no worker is answering") == 1, "said once"

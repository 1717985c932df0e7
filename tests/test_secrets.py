"""Secrets stay secret: API keys and S3 credentials never reach histories (exported with the
`temporal` CLI), results, logs or artifacts; with ATELIER_CODEC_KEY, payloads are encrypted."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import urllib.request

import pytest
from minio import Minio
from temporalio.client import Client

from models.settings import Settings
from starter.codec_server import make_server
from tests.conftest import TEMPORAL, address_of, atelier_env, run_cli, start_worker

API_KEY = "sk-live-SECRET-0123456789abcdef"
S3_SECRET = "S3-SECRET-KEY-fedcba9876543210"
CODEC_KEY = base64.b64encode(bytes(range(32))).decode()


def exported_history(address: str, workflow_id: str) -> str:
    done = subprocess.run(
        [str(TEMPORAL), "workflow", "show", "--workflow-id", workflow_id, "--address", address, "--output", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


@pytest.mark.slow
async def test_keys_never_leave_the_worker(dev_env, fake_openai, s3_endpoint, tmp_path):
    fake_openai.script_scores(90)
    env = atelier_env(
        tmp_path, address_of(dev_env), LLM_BASE_URL=fake_openai.url, LLM_API_KEY=API_KEY,
        ATELIER_STORAGE="s3", S3_ENDPOINT=s3_endpoint, S3_ACCESS_KEY="atelier", S3_SECRET_KEY=S3_SECRET,
        S3_BUCKET="secrets-test", S3_SECURE="false",
    )  # fmt: skip
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        done = run_cli("image", "a cat", "--max-iterations", "1", "--id", "secret-run", env=env)
        world = run_cli("world", "a tiny village", "--characters", "1", "--posts", "1", "--id", "secret-world", env=env)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert done.returncode == 0 and world.returncode == 0, done.stderr + world.stderr
    assert fake_openai.calls("responses")  # the key was really used
    seen = [done.stdout, done.stderr, world.stdout, world.stderr]
    seen += [exported_history(address_of(dev_env), wid) for wid in ("secret-run", "secret-world")]
    seen += [
        p.read_text(errors="replace")
        for p in tmp_path.rglob("*")
        if p.is_file() and p.suffix in {".log", ".jsonl", ".json"}
    ]
    bucket = Minio(s3_endpoint, access_key="atelier", secret_key=S3_SECRET, secure=False)
    objects = list(bucket.list_objects("secrets-test", recursive=True))
    assert objects, "artifacts went to S3"
    for item in objects:
        seen.append(bucket.get_object("secrets-test", item.object_name).read().decode(errors="replace"))
    for text in seen:
        assert API_KEY not in text and S3_SECRET not in text


@pytest.mark.slow
async def test_payloads_are_unreadable_without_the_codec_key(dev_env, tmp_path):
    env = atelier_env(tmp_path, address_of(dev_env), ATELIER_CODEC_KEY=CODEC_KEY)
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        done = run_cli("image", "a secret violet giraffe", "--max-iterations", "1", "--id", "sealed", env=env)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["prompt_history"] == ["a secret violet giraffe"]
    raw = exported_history(address_of(dev_env), "sealed")
    assert "giraffe" not in raw and base64.b64encode(b"giraffe").decode()[:8] not in raw
    assert "binary/encrypted" in raw or base64.b64encode(b"binary/encrypted").decode() in raw
    # a client without the key sees only sealed bytes
    plain = await Client.connect(address_of(dev_env))
    history = await plain.get_workflow_handle("sealed").fetch_history()
    first = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert first.metadata["encoding"] == b"binary/encrypted" and b"giraffe" not in first.data

    # the codec server decodes it for the UI
    server = make_server(Settings(ATELIER_CODEC_KEY=CODEC_KEY), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        metadata = {k: base64.b64encode(v).decode() for k, v in first.metadata.items()}
        payload = {"metadata": metadata, "data": base64.b64encode(first.data).decode()}
        url = f"http://127.0.0.1:{server.server_address[1]}/decode"
        body = json.dumps({"payloads": [payload]}).encode()
        request = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            decoded = json.loads(response.read())
            assert response.headers["access-control-allow-origin"] == "http://localhost:8233"
        assert b"giraffe" in base64.b64decode(decoded["payloads"][0]["data"])
    finally:
        server.shutdown()


@pytest.mark.slow
def test_a_bad_codec_key_is_a_clear_error(tmp_path):
    done = run_cli("status", "x", env=atelier_env(tmp_path, "127.0.0.1:1", ATELIER_CODEC_KEY="short"))
    assert done.returncode == 1 and "ATELIER_CODEC_KEY" in done.stderr and "Traceback" not in done.stderr
    assert os.environ.get("ATELIER_CODEC_KEY") is None

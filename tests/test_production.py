"""The production path: the compose stack validates, and workers serve Prometheus metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request

import pytest

from models.search_attributes import KEYS, KINDS
from tests.conftest import ROOT, address_of, atelier_env, free_port, run_cli, start_worker, wait_for


def _compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: `make test` installs Debian's docker-compose")
        pytest.skip("docker-compose is not installed (`apt-get install docker-compose`)")
    return found


@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]], ids=["default", "gpu"])
def test_compose_file_is_valid(profile):
    done = subprocess.run([_compose(), *profile, "config", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_compose_stack_has_what_production_needs():
    done = subprocess.run(
        [_compose(), "--profile", "gpu", "config", "--services"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    services = set(done.stdout.split())
    needed = "postgresql temporal temporal-schema temporal-namespace temporal-ui minio minio-bucket jaeger prometheus"
    workers = {"worker", "text-worker", "image-worker", "scoring-worker", "scoring-worker-cpu"}
    assert set(needed.split()) | workers <= services
    config = subprocess.run([_compose(), "config"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    job = " ".join(config.split("\n  temporal-namespace:\n", 1)[1].split("depends_on:")[0].split())
    for name in ("TEMPORAL_ADDRESS:", "TEMPORAL_API_KEY:", "TEMPORAL_TLS_CLIENT_CERT_PATH:", "ATELIER_DEPLOYMENT:"):
        assert config.count(name) >= len(workers), f"every worker reads {name[:-1]}"
    for key in KEYS:  # the namespace job registers Atelier's search attributes
        assert key.name in job and f"{key.name}={KINDS[key.indexed_value_type.name]}" in job


@pytest.mark.slow
async def test_worker_serves_sdk_and_custom_metrics(dev_env, tmp_path):
    port = free_port()
    env = atelier_env(tmp_path, address_of(dev_env), ATELIER_METRICS_PORT=str(port))
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        done = run_cli("image", "a blue kite", "--max-iterations", "1", env=env)
        assert done.returncode == 0, done.stderr
        for _ in range(2):  # a miss, then a cache hit
            meme = run_cli("meme", "mondays", "--format", "two-buttons", env=env)
            assert meme.returncode == 0, meme.stderr

        def scrape() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    return response.read().decode()
            except OSError:
                return ""

        wait_for(lambda: 'result="hit"' in scrape(), 30, "metrics to be exported")
        text = scrape()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert "temporal_activity_execution_latency" in text  # the SDK's own metrics
    assert "atelier_provider_calls{" in text and 'call="generate_image"' in text
    assert "atelier_provider_call_ms" in text and "atelier_scored_images" in text
    assert "atelier_tokens{" in text and 'direction="input"' in text and 'model="offline"' in text
    assert "atelier_images_generated{" in text and "atelier_call_cost_usd" in text
    buckets = {
        line.split('le="')[1].split('"')[0]
        for line in text.splitlines()
        if "_bucket{" in line and 'le="' in line and line.startswith(("atelier_call_cost_usd", "atelier_meme_score"))
    }
    assert {"0.001", "0.01", "0.1", "0.5"} <= buckets, "dollar and score buckets fit their values"
    assert not buckets & {"50", "100", "10000"}, "no millisecond buckets on money or scores"
    assert "atelier_technical_score" in text
    assert "atelier_meme_cache{" in text and 'result="miss"' in text  # workflow metrics: cache, phases, scores
    assert "atelier_meme_phase_ms_bucket{" in text and 'phase="GENERATING_IMAGE"' in text
    assert "atelier_meme_score" in text and "atelier_meme_refinements" in text
    usage = json.loads(done.stdout)["usage"]
    assert usage["images"] == 1 and usage["input_tokens"] > 0 and usage["estimated_cost_usd"] == 0

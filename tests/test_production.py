"""The production path: the compose stack validates, and workers serve Prometheus metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from models.search_attributes import KEYS, KINDS
from tests.conftest import ROOT, address_of, atelier_env, free_port, run_cli, start_worker, wait_for


def _compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: `make test` installs Debian's docker-compose")
        pytest.skip("docker-compose is not installed (`apt-get install docker-compose`)")
    return found


def compose(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose ARGS` on the repository's file with only `env` for the stack's own variables: no `.env`
    of the developer's, no MINIO_ROOT_PASSWORD or ATELIER_BIND from their shell."""
    empty = tmp_path / "empty.env"
    empty.touch()
    clean = {k: v for k, v in os.environ.items() if k not in {"MINIO_ROOT_PASSWORD", "ATELIER_BIND"}} | env
    return subprocess.run(
        [_compose(), "--env-file", str(empty), *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


PASSWORD = {"MINIO_ROOT_PASSWORD": "a-test-password"}


@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]], ids=["default", "gpu"])
def test_compose_file_is_valid(profile, tmp_path):
    done = compose(*profile, "config", "-q", tmp_path=tmp_path, **PASSWORD)
    assert done.returncode == 0, done.stderr


def published(config: str) -> dict[str, set[str]]:
    """Each service's published ports, as the host addresses they listen on (short or long syntax)."""
    hosts: dict[str, set[str]] = {}
    for name, service in yaml.safe_load(config)["services"].items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                host = port.get("host_ip", "0.0.0.0")
            else:
                parts = str(port).split(":")
                host = parts[0] if len(parts) == 3 else "0.0.0.0"
            hosts.setdefault(name, set()).add(host)
    return hosts


def test_compose_publishes_on_loopback_unless_told_and_wants_a_minio_password(tmp_path):
    done = compose("--profile", "gpu", "config", tmp_path=tmp_path, **PASSWORD)
    assert done.returncode == 0, done.stderr
    hosts = published(done.stdout)
    assert {"temporal", "temporal-ui", "minio", "jaeger", "prometheus"} <= set(hosts)
    assert all(listen == {"127.0.0.1"} for listen in hosts.values()), hosts
    assert "atelier-change-me" not in done.stdout, "no default password"
    assert "a-test-password" in yaml.safe_load(done.stdout)["services"]["worker"]["environment"]["S3_SECRET_KEY"]

    told = compose("config", tmp_path=tmp_path, ATELIER_BIND="0.0.0.0", **PASSWORD)
    assert told.returncode == 0, told.stderr
    assert all(listen == {"0.0.0.0"} for listen in published(told.stdout).values())

    for missing in ({}, {"MINIO_ROOT_PASSWORD": ""}):
        refused = compose("config", "-q", tmp_path=tmp_path, **missing)
        assert refused.returncode != 0 and "set MINIO_ROOT_PASSWORD" in refused.stderr, refused.stderr


def test_compose_stack_has_what_production_needs(tmp_path):
    done = compose("--profile", "gpu", "config", "--services", tmp_path=tmp_path, **PASSWORD)
    services = set(done.stdout.split())
    needed = "postgresql temporal temporal-schema temporal-namespace temporal-ui minio minio-bucket jaeger prometheus"
    workers = {"worker", "text-worker", "image-worker", "scoring-worker", "scoring-worker-cpu"}
    assert set(needed.split()) | workers <= services
    config = compose("config", tmp_path=tmp_path, **PASSWORD).stdout
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

"""The API as a user starts it: `starter up` prints its URL and plain HTTP starts, follows and fetches an
image run; `starter serve` without keys refuses to listen beyond loopback; `api-key` manages keys."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import atelier_env, free_port, run_cli

pytestmark = pytest.mark.slow  # CLI processes, a dev server, a worker and the API


@pytest.fixture
def started(tmp_path) -> Iterator[tuple[subprocess.CompletedProcess[str], dict[str, str]]]:
    """`starter up` in a data dir of the test's own; `starter down` when the test ends, pass or fail."""
    env = atelier_env(tmp_path, f"127.0.0.1:{free_port()}") | {"ATELIER_API_PORT": str(free_port())}
    try:
        yield run_cli("up", env=env, timeout=120), env
    finally:
        run_cli("down", env=env)


def test_up_prints_the_studio_url_and_an_image_run_is_started_followed_and_fetched(started):
    up, env = started
    assert up.returncode == 0, up.stderr
    url = next(line.split()[1] for line in up.stderr.splitlines() if line.startswith("Studio: ")).rstrip("/")
    with httpx.Client(base_url=url, timeout=30) as api:
        created = api.post("/v1/images", json={"prompt": "a lighthouse at dusk", "max_iterations": 2, "threshold": 100})
        assert created.status_code == 202, created.text
        run = created.json()
        with api.stream("GET", run["urls"]["events"], timeout=120) as stream:
            types = [line.removeprefix("event: ") for line in stream.iter_lines() if line.startswith("event: ")]
        assert types[0] == "run.started" and types[-1] == "run.completed" and types.count("iteration.completed") == 2
        result = api.get(run["urls"]["result"]).json()
        picture = api.get(result["iterations"][-1]["image"]["url"])
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
        # the CLI's run (what `make demo` starts) is on the studio, at the link the CLI prints
        cli = run_cli("image", "a lighthouse at dawn", "--max-iterations", "2", "--id", "demo-run", env=env)
        assert cli.returncode == 0, cli.stderr
        assert f"Studio: {url}/runs/demo-run" in cli.stderr.splitlines()
        listed = api.get("/", headers={"Accept": "text/html"})
        assert listed.status_code == 200 and 'data-run="demo-run"' in listed.text
        page = api.get("/runs/demo-run", headers={"Accept": "text/html"}).text
        assert page.count('class="card iteration') == 2 and "/v1/artifacts/runs/demo-run/iteration-01." in page
    down = run_cli("down", env=env)
    assert "stopped api" in down.stderr and "stopped worker" in down.stderr


def test_a_keyless_api_refuses_to_listen_beyond_loopback_and_keys_are_managed(tmp_path):
    env = atelier_env(tmp_path, "127.0.0.1:1")
    refused = run_cli("serve", "--host", "0.0.0.0", env=env)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "loopback only" in refused.stderr and "api-key add" in refused.stderr

    added = run_cli("api-key", "add", "acme", env=env)
    assert added.returncode == 0 and added.stdout.strip().startswith("atl_")
    assert run_cli("api-key", "add", "Not A Tenant", env=env).returncode == 2
    listed = json.loads(run_cli("api-key", "list", "--json", env=env).stdout)
    assert [k["tenant"] for k in listed] == ["acme"] and "sha256" not in listed[0]
    stored = b"".join(path.read_bytes() for path in (tmp_path / "data").glob("atelier.db*"))  # its WAL too
    assert stored and added.stdout.strip().encode() not in stored, "stored hashed"
    assert run_cli("api-key", "revoke", listed[0]["id"], env=env).returncode == 0
    assert run_cli("api-key", "revoke", listed[0]["id"], env=env).returncode == 2

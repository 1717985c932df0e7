"""A secured cluster, for real: nginx terminates TLS (server TLS, mutual TLS, API key) in front of a dev
server, and a worker and the CLI reach it with only the ecosystem's TEMPORAL_* variables or a profile."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, address_of, atelier_env, run_cli, start_worker
from tests.secured_proxy import NGINX, Pki, SecuredProxy, make_pki

pytestmark = [pytest.mark.slow, pytest.mark.proxy]

API_KEY = "atelier-test-key-7f3a9c"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def proxies(module_dev_env, pki, tmp_path_factory) -> Iterator[dict[str, SecuredProxy]]:
    if not Path(NGINX).exists():
        if os.environ.get("CI"):
            pytest.fail("nginx is missing: `make test` installs Debian's nginx")
        pytest.skip("nginx is not installed (`apt-get install nginx`)")
    folder = tmp_path_factory.mktemp("nginx")
    with contextlib.ExitStack() as stack:  # each one stopped, even when a later one fails to start
        yield {
            mode: stack.enter_context(SecuredProxy(folder, pki, address_of(module_dev_env), mode, API_KEY))
            for mode in ("tls", "mtls", "apikey")
        }


def connection(mode: str, proxies: dict[str, SecuredProxy], pki: Pki) -> dict[str, str]:
    """Only the ecosystem's variables: what a team sets for its cluster."""
    variables = {"TEMPORAL_ADDRESS": proxies[mode].address, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca)}
    if mode == "mtls":
        variables |= {
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pki.client_cert),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(pki.client_key),
        }
    if mode == "apikey":
        variables["TEMPORAL_API_KEY"] = API_KEY
    return variables


@pytest.mark.parametrize("mode", ["tls", "mtls", "apikey"])
def test_worker_and_cli_run_an_image_loop_and_a_world_through_the_secured_endpoint(mode, proxies, pki, tmp_path):
    env = atelier_env(tmp_path, proxies[mode].address, **connection(mode, proxies, pki))
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        image = run_cli("image", "a lantern in the fog", "--max-iterations", "1", "--id", f"secured-{mode}", env=env)
        world = run_cli(
            "world", "A lantern town", "--characters", "2", "--posts", "1", "--id", f"secured-world-{mode}", env=env
        )
        status = run_cli("status", f"secured-world-{mode}", env=env)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert image.returncode == 0, image.stderr
    assert json.loads(image.stdout)["workflow_id"] == f"secured-{mode}"
    assert world.returncode == 0, world.stderr
    assert json.loads(status.stdout)["status"] == "completed"
    log = (tmp_path / "worker.log").read_text()
    assert "worker polling" in log and proxies[mode].address in log
    everything = image.stdout + image.stderr + world.stdout + world.stderr + status.stdout + log
    assert API_KEY not in everything and "PRIVATE KEY" not in everything, "no key in any output"


def test_a_profile_file_and_the_profile_flag_connect_with_mutual_tls(proxies, pki, tmp_path):
    config = tmp_path / "temporal.toml"
    config.write_text(
        f"""
[profile.default]
address = "127.0.0.1:1"

[profile.secured]
address = "{proxies["mtls"].address}"
namespace = "default"
[profile.secured.tls]
server_ca_cert_path = "{pki.ca}"
client_cert_path = "{pki.client_cert}"
client_key_path = "{pki.client_key}"
"""
    )
    env = atelier_env(tmp_path, "", TEMPORAL_CONFIG_FILE=str(config))
    del env["TEMPORAL_ADDRESS"]
    env_worker = env | {"TEMPORAL_PROFILE": "secured"}
    worker = start_worker(env_worker, tmp_path / "worker.log")
    try:
        done = run_cli("--profile", "secured", "image", "a kite", "--max-iterations", "1", "--id", "profiled", env=env)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    assert f"http://127.0.0.1:{proxies['mtls'].port + 1000}/namespaces/default/workflows/profiled" in done.stderr
    missing = run_cli("--profile", "nope", "status", "profiled", env=env)
    assert missing.returncode == 2 and "Profile 'nope' not found" in missing.stderr


@pytest.mark.parametrize(
    ("mode", "change", "message"),
    [
        ("tls", {"TEMPORAL_TLS_SERVER_CA_CERT_PATH": "OTHER_CA"}, "TLS handshake with Temporal at"),
        ("tls", {"TEMPORAL_TLS_SERVER_CA_CERT_PATH": None}, "speaks TLS: set TEMPORAL_TLS=true"),
        (
            "mtls",
            {"TEMPORAL_TLS_CLIENT_CERT_PATH": None, "TEMPORAL_TLS_CLIENT_KEY_PATH": None},
            "refused the client certificate",
        ),
        (
            "mtls",
            {"TEMPORAL_TLS_CLIENT_CERT_PATH": "STRANGER_CERT", "TEMPORAL_TLS_CLIENT_KEY_PATH": "STRANGER_KEY"},
            "refused the client certificate",
        ),
        ("apikey", {"TEMPORAL_API_KEY": "wrong-key-123"}, "refused the API key (check TEMPORAL_API_KEY"),
        ("apikey", {"TEMPORAL_NAMESPACE": "nowhere"}, "has no namespace 'nowhere' (check TEMPORAL_NAMESPACE"),
        (
            "mtls",
            {"TEMPORAL_TLS_CLIENT_CERT_PATH": "/nonexistent/client.pem"},
            "Temporal TLS: no file /nonexistent/client.pem",
        ),
    ],
    ids=["wrong-ca", "no-tls", "no-client-cert", "wrong-client-cert", "wrong-key", "no-namespace", "bad-cert-path"],
)
def test_a_refused_connection_is_one_line_naming_what_to_fix(mode, change, message, proxies, pki, tmp_path):
    variables = connection(mode, proxies, pki)
    for name, value in change.items():
        if value is None:
            variables.pop(name, None)
        else:
            stand_ins = {"OTHER_CA": pki.other_ca, "STRANGER_CERT": pki.stranger_cert, "STRANGER_KEY": pki.stranger_key}
            variables[name] = str(stand_ins.get(value, value))
    env = atelier_env(tmp_path, proxies[mode].address, **variables)
    cli = run_cli("status", "anything", env=env, timeout=60)
    worker = run_worker_once(env, tmp_path)
    for done in (cli, worker):
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert message in lines[-1] and "Traceback" not in done.stderr, done.stderr
        assert "wrong-key-123" not in done.stderr and API_KEY not in done.stderr


async def test_only_a_tls_endpoint_is_taken_for_one(proxies, module_dev_env):
    """The probe behind "speaks TLS": a plaintext client's failure at a TLS endpoint varies (a frame size error,
    or the connection closed), so the handshake is asked for; a plain gRPC server or a closed port is not TLS."""
    from kit.connection import speaks_tls

    assert await speaks_tls(proxies["tls"].address) and await speaks_tls(proxies["mtls"].address)
    assert not await speaks_tls(address_of(module_dev_env))
    assert not await speaks_tls("127.0.0.1:1") and not await speaks_tls("no-port")


def run_worker_once(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`python -m workers` against a refused connection: it must stop at once with the one line."""
    return subprocess.run(
        [sys.executable, "-m", "workers"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
    )


def test_grpc_metadata_and_secrets_come_from_the_ecosystem_variables(monkeypatch, pki):
    from kit.urls import Urls
    from models.settings import Settings

    monkeypatch.setenv("TEMPORAL_GRPC_META_X_TEAM", "lanterns")
    monkeypatch.setenv("TEMPORAL_API_KEY", API_KEY)
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(pki.client_cert))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(pki.client_key))
    settings = Settings(TEMPORAL_ADDRESS="temporal.example:7233")
    config = settings.temporal_connect_config()
    assert config["rpc_metadata"] == {"x-team": "lanterns"} and config["api_key"] == API_KEY
    assert config["tls"].client_cert == pki.client_cert.read_bytes()
    assert settings.temporal_secured == "API key over mTLS"
    shown = repr(settings) + str(settings) + json.dumps(settings.model_dump(mode="json"), default=str)
    assert API_KEY not in shown and "PRIVATE KEY" not in shown, "settings never print a key"
    assert Urls(settings).temporal_ui("w") == "http://temporal.example:8233/namespaces/default/workflows/w"
    cloud = Settings(TEMPORAL_ADDRESS="ns.acct.tmprl.cloud:7233", TEMPORAL_NAMESPACE="ns.acct")
    assert Urls(cloud).temporal_ui("w") == "https://cloud.temporal.io/namespaces/ns.acct/workflows/w"
    moved = settings.model_copy(update={"temporal_address": "elsewhere.example:7233"})
    assert moved.temporal_connect_config()["target_host"] == "elsewhere.example:7233", "a copy connects where it says"

"""Rendering deploy/ with `kubectl kustomize` and reading what it renders: pod templates, their queues, the
settings ConfigMap. Shared by the manifest tests and the scaling-signal test."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
# what a reader applies: the two overlays, each with KEDA, and the worker controller's variant
APPLIED = ["k8s/overlays/temporal-cloud", "k8s/overlays/self-hosted", "keda/temporal-cloud", "keda/self-hosted"]
APPLIED.append("worker-controller")
# the mutual-TLS components composed onto an overlay, the way README.md's Scale-out says
COMPOSED = {
    "self-hosted+mtls": (["keda/self-hosted"], ["k8s/components/mtls", "keda/components/mtls"]),
    "temporal-cloud+mtls": (["k8s/overlays/temporal-cloud"], ["k8s/components/mtls"]),
}
RENDERS = APPLIED + list(COMPOSED)
POD_KINDS = ("Deployment", "WorkerDeployment")

Doc = dict[str, Any]


def need(tool: str | None, what: str, install: str) -> str:
    """`tool`'s path; a missing one skips the test here and fails it in CI."""
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing: {install}")
        pytest.skip(f"{what} is not installed ({install})")
    return tool


def kubectl() -> str:
    return need(shutil.which("kubectl"), "kubectl", "Debian's kubectl package, or a kubectl on PATH")


def rendered_text(name: str, scratch: Path) -> str:
    """`kubectl kustomize` of deploy/<name>, or of a composition of deploy/ directories written to `scratch`."""
    if name in COMPOSED:
        resources, components = COMPOSED[name]
        folder = scratch / name
        folder.mkdir(parents=True, exist_ok=True)
        rel = [os.path.relpath(DEPLOY / path, folder) for path in resources + components]
        lines = ["namespace: atelier", "resources:", *(f"  - {r}" for r in rel[: len(resources)]), "components:"]
        lines += [f"  - {r}" for r in rel[len(resources) :]]
        (folder / "kustomization.yaml").write_text("\n".join(lines) + "\n")
        target = folder
    else:
        target = DEPLOY / name
    done = subprocess.run([kubectl(), "kustomize", str(target)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{name}: {done.stderr}"
    return done.stdout


def kind_of(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [doc for doc in kind_of(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"one {kind} {name}, not {len(found)}"
    return found[0]


def pod_templates(docs: list[Doc]) -> list[tuple[Doc, Doc]]:
    """(owner, its pod template) for every Deployment and WorkerDeployment."""
    return [(doc, doc["spec"]["template"]) for doc in docs if doc["kind"] in POD_KINDS]


def queues_of(template: Doc) -> list[str]:
    """The queues a pod template's `python -m workers --queue ...` serves (none for another command)."""
    command = template["spec"]["containers"][0].get("command", [])
    if command[:3] != ["python", "-m", "workers"]:
        return []
    return [command[i + 1] for i, arg in enumerate(command) if arg == "--queue"]


def settings_data(docs: list[Doc]) -> dict[str, str]:
    """The settings ConfigMap's data (its name carries a digest of its contents)."""
    maps = [doc for doc in kind_of(docs, "ConfigMap") if doc["metadata"]["name"].startswith("atelier-settings")]
    assert len(maps) == 1, [doc["metadata"]["name"] for doc in maps]
    return maps[0]["data"]


def environment(template: Doc, docs: list[Doc]) -> dict[str, str]:
    """The plain variables a pod's first container gets: the settings ConfigMap's, then its own `env` values."""
    container = template["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(named(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    env.update({item["name"]: item["value"] for item in container.get("env", []) if "value" in item})
    return env

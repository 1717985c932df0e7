"""The API process loads no worker internals: importing `starter.app` (the API and the Studio) loads no module
of `activities/` or `workers/`. What both sides need lives in `kit/` and `models/`, and the API calls workflows
through their interfaces (`models.workflow_interfaces`), each held equal here to the workflow the worker runs.
No server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import get_type_hints

import pytest
from temporalio import workflow

from models.workflow_interfaces import INTERFACES
from workers.registry import WORKFLOWS

ROOT = Path(__file__).resolve().parent.parent


def loaded_by(module: str) -> list[str]:
    """Every module importing `module` loads, in a fresh interpreter."""
    probe = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_api_process_loads_no_activity_and_no_worker_module():
    internals = [name for name in loaded_by("starter.app") if name.split(".")[0] in ("activities", "workers")]
    assert internals == [], "the API loads worker internals: move what it needs to kit/ or models/"


def handlers(cls: type) -> dict[str, tuple[str, dict]]:
    """A workflow's run, queries, signals and updates: name → (kind, the handler's type hints)."""
    found = workflow._Definition.must_from_class(cls)
    named = {"run": ("run", found.run_fn)}
    for kind, defined in (("query", found.queries), ("signal", found.signals), ("update", found.updates)):
        named |= {name: (kind, handler.fn) for name, handler in defined.items() if name is not None}
    return {name: (kind, get_type_hints(fn)) for name, (kind, fn) in named.items()}


@pytest.mark.parametrize("interface", INTERFACES, ids=lambda cls: cls.__name__)
def test_each_interface_is_its_workflow_as_the_worker_runs_it(interface):
    implementations = {cls.__name__: cls for cls in WORKFLOWS}
    assert interface.__name__ in implementations, "an interface of a workflow no worker runs"
    implementation = handlers(implementations[interface.__name__])
    for name, (kind, hints) in handlers(interface).items():
        assert name in implementation, f"{interface.__name__} has no {kind} {name!r}"
        assert implementation[name] == (kind, hints), f"{interface.__name__}.{name} differs from its workflow's"

"""Worker Versioning (opt-in): with ATELIER_DEPLOYMENT set, every worker joins that Worker Deployment under a
build id (ATELIER_BUILD_ID, by default the package version and a digest of the workflow code).

Finite pipelines (image, meme, world, character, knowledge) are pinned to the version they started on, so
new workflow code never replays their histories; conversations are pinned too and move to the current
version when they continue as new. Without ATELIER_DEPLOYMENT workers are unversioned (`make demo`).
"""

from __future__ import annotations

import ast
import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any

from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import WorkerDeploymentConfig

from models.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def module_file(root: Path, name: str) -> Path | None:
    """The project file of a dotted module name (a module or a package's __init__), if it is one."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_names(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (`from a import b` counts as `a` and `a.b`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def workflow_code(root: Path = ROOT) -> list[Path]:
    """The workflow modules and every project module they import, however indirectly: the code whose
    decisions a replay of their histories runs (ledgers, scoring rules, id rules in `models/`, ...)."""
    found: set[Path] = set()
    todo = sorted((root / "workflows").glob("*.py"))
    while todo:
        path = todo.pop()
        if path in found:
            continue
        found.add(path)
        for name in imported_names(path):
            parts = name.split(".")
            for end in range(1, len(parts) + 1):  # a package's __init__ runs too
                if (file := module_file(root, ".".join(parts[:end]))) is not None and file not in found:
                    todo.append(file)
    return sorted(found)


def default_build_id(root: Path = ROOT) -> str:
    """`<package version>-<12 hex of the workflow code>`: a new build id whenever the workflow modules or
    any project module they import change."""
    digest = hashlib.sha256()
    for path in workflow_code(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    try:
        version = metadata.version("atelier")
    except metadata.PackageNotFoundError:
        version = "0"
    return f"{version}-{digest.hexdigest()[:12]}"


def deployment_version(settings: Settings) -> WorkerDeploymentVersion | None:
    if not settings.deployment:
        return None
    return WorkerDeploymentVersion(settings.deployment, settings.build_id or default_build_id())


def deployment_options(settings: Settings) -> dict[str, Any]:
    """`Worker` keywords: the deployment version with pinned as the default behaviour; none when unversioned."""
    version = deployment_version(settings)
    if version is None:
        return {}
    config = WorkerDeploymentConfig(
        version=version, use_worker_versioning=True, default_versioning_behavior=VersioningBehavior.PINNED
    )
    return {"deployment_config": config}

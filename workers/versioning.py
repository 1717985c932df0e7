"""Worker Versioning (opt-in): with ATELIER_DEPLOYMENT set, every worker joins that Worker Deployment under a
build id (ATELIER_BUILD_ID, by default the package version and a digest of the workflow code).

Finite pipelines (image, meme, world, character, knowledge) are pinned to the version they started on, so
new workflow code never replays their histories; conversations are pinned too and move to the current
version when they continue as new. Without ATELIER_DEPLOYMENT workers are unversioned (`make demo`).
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any

from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import WorkerDeploymentConfig

from models.settings import Settings

WORKFLOW_CODE = Path(__file__).resolve().parent.parent / "workflows"


def default_build_id() -> str:
    """`<package version>-<12 hex of the workflow code>`: a new build id whenever workflow code changes."""
    digest = hashlib.sha256()
    for path in sorted(WORKFLOW_CODE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
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

"""How a run introduces itself in the Temporal UI: its static summary and details, and its starting
search attributes (when the server has Atelier's)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client

from kit.connection import has_search_attributes
from kit.run_reading import MEMO_TEXT
from kit.urls import Urls
from models.experiment import EXPERIMENT_PIPELINE
from models.pipelines import PIPELINES
from models.search_attributes import at_start
from models.settings import Settings
from models.text import shorten


def static_summary(pipeline: str, text: str) -> str:
    """One line for the run list: the pipeline and its prompt or topic."""
    return f"{pipeline} · {shorten(text, 80)}"


def static_details(pipeline: str, job: BaseModel, workflow_id: str, settings: Settings) -> str:
    """Markdown: the run's options and where its output goes."""
    options = job.model_dump(mode="json", exclude_none=True, exclude={"prompt", "topic", "references", "docs"})
    lines = [f"**{pipeline}** run `{workflow_id}` · provider `{settings.resolved_provider}`", ""]
    if text := getattr(job, "prompt", None) or getattr(job, "topic", None):
        lines += [f"> {shorten(str(text), 400)}", ""]
    if options:
        lines += ["| option | value |", "|---|---|"]
        lines += [f"| {name} | `{_cell(value)}` |" for name, value in options.items()]
        lines.append("")
    lines.append(f"Output: {output_of(pipeline, workflow_id, settings)}")
    lines += ["", f"Studio: [{workflow_id}]({Urls(settings).studio_page(pipeline, workflow_id)})"]
    return "\n".join(lines)


def output_of(pipeline: str, workflow_id: str, settings: Settings) -> str:
    """Where the run's output goes: its pipeline's artifacts (and its gallery, when it writes one)."""
    where = settings.artifact_dir if settings.storage == "local" else f"bucket `{settings.s3_bucket}`"
    if pipeline == "conversation":
        return f"turns archived under `conversations/{workflow_id}/` in {where}; `python -m starter chat --history`"
    if pipeline == "knowledge":
        return "the knowledge base (`python -m starter kb list`)"
    if pipeline == EXPERIMENT_PIPELINE:
        return f"its report under `experiments/{workflow_id}/` in {where}; `python -m starter result {workflow_id}`"
    folder = f"{PIPELINES[pipeline].artifacts}/{workflow_id}/"
    if gallery := PIPELINES[pipeline].gallery:
        return f"`{folder}` in {where}; gallery `{folder}{gallery}`"
    return f"`{folder}` in {where}; `python -m starter result {workflow_id}`"


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return shorten(text, 100).replace("|", "\\|")


async def start_options(
    client: Client,
    settings: Settings,
    pipeline: str,
    text: str,
    job: BaseModel,
    workflow_id: str,
    tenant: str | None = None,
) -> dict[str, Any]:
    """`start_workflow` keywords: summary, details, the prompt or topic in the memo (what the studio lists and
    searches) and (when the server has them) search attributes."""
    options: dict[str, Any] = {
        "static_summary": static_summary(pipeline, text),
        "static_details": static_details(pipeline, job, workflow_id, settings),
        "memo": {MEMO_TEXT: shorten(text, 400)},
    }
    if await has_search_attributes(client, settings.temporal_namespace):
        options["search_attributes"] = at_start(pipeline, settings.resolved_provider, workflow_id, tenant)
    return options

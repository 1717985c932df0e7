"""A property-based run of schemathesis over the API's own /openapi.json: no 5xx, no status code, content
type or body outside the document. A workflow worker answers queries; no activity runs (nothing is made)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
from temporalio.worker import Worker

from models.settings import WORKFLOW_QUEUE
from tests.api_support import api_settings, serving
from tests.conftest import address_of
from workers.registry import WORKFLOWS

pytestmark = pytest.mark.slow  # a dev server, a worker, uvicorn and schemathesis

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.mark.timeout(420)  # its cases take minutes on a loaded machine
async def test_schemathesis_finds_no_server_error_and_nothing_outside_the_schema(dev_env, tmp_path):
    settings = api_settings(address_of(dev_env), tmp_path)
    async with (
        Worker(dev_env.client, task_queue=WORKFLOW_QUEUE, workflows=WORKFLOWS),
        serving(settings, dev_env.client) as (base, _),
    ):
        run = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS), "run", f"{base}/openapi.json", "--checks", CHECKS,
            # streams last as long as their run (no activity worker here: for ever); adding knowledge needs the
            # scoring worker (tests/test_api_conversations.py)
            "--exclude-path-regex", "/(events|messages|knowledge)$",
            "--max-examples", "4", "--seed", "7", "--request-timeout", "20",
            "--phases", "examples,coverage,fuzzing", "--no-color",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,  # its reports go there
        )  # fmt: skip
        out, _ = await run.communicate()
    report = out.decode(errors="replace")
    assert run.returncode == 0, report[-6000:]
    generated = re.search(r"(\d+) generated", report)
    assert generated and int(generated.group(1)) >= 200, f"too few cases to mean anything: {report[-2000:]}"

"""Record a finished ImageRefinementWorkflow history into tests/histories/ for replay tests.

Run after changing the workflow on purpose: `python -m tests.record_history`.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.providers.offline import OfflineProvider
from activities.storage import LocalStore
from models.image import ImageJob, ImageOptions
from models.settings import WORKFLOW_QUEUE
from tests.conftest import TEST_SERVER, running_workers
from workflows.image_refinement import ImageRefinementWorkflow

OUT = Path(__file__).parent / "histories" / "image_refinement.json"


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
    )
    job = ImageJob(prompt="a golden ring with a red ruby", options=ImageOptions(), max_iterations=3, threshold=100)
    with tempfile.TemporaryDirectory() as tmp:
        async with running_workers(env.client, OfflineProvider(), LocalStore(Path(tmp))):
            handle = await env.client.start_workflow(
                ImageRefinementWorkflow.run, job, id="recorded-image-run", task_queue=WORKFLOW_QUEUE
            )
            await handle.signal(ImageRefinementWorkflow.feedback, "more gold")
            await handle.result()
            history = await handle.fetch_history()
    await env.shutdown()
    OUT.write_text(history.to_json())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    asyncio.run(main())

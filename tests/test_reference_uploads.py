"""Reference images are the CLI's to read: it uploads local files to the artifact store and the workflow
gets artifact references; a worker reads only the store and guarded http(s) URLs, never its own disk."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import ActivityEnvironment

from activities.providers.offline import OfflineProvider
from activities.reference_store import ReferenceActivities
from kit.storage import LocalStore, S3Store
from models.artifacts import ArtifactRef, reference_key
from models.image import ImageJob, StoreReferencesRequest
from models.settings import WORKFLOW_QUEUE
from tests.conftest import address_of, atelier_env, cli_main, running_workers
from tests.fake_openai import png


def messages(error: BaseException | None) -> str:
    """Every message down an error's cause chain."""
    said = []
    while error is not None:
        said.append(str(error))
        error = error.__cause__ or getattr(error, "cause", None)
    return " | ".join(said)


async def test_a_worker_path_as_reference_reaches_no_file_and_does_not_tell_if_it_exists(time_env, tmp_path):
    secret = tmp_path / "secret.png"  # a picture the worker can read: another run's artifact, say
    secret.write_bytes(png(5))
    store = LocalStore(tmp_path / "store")
    paths = [str(secret), str(tmp_path / "missing.png"), str(tmp_path), f"file://{secret}", "~/secret.png"]
    seen = []
    async with running_workers(time_env.client, OfflineProvider(), store):
        for path in paths:
            raw = {"prompt": "a cat", "references": [path], "max_iterations": 1, "threshold": 0, "technical_weight": 0}
            with pytest.raises(WorkflowFailureError) as failure:
                await time_env.client.execute_workflow(
                    "ImageRefinementWorkflow", raw, id=f"path-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
                )
            seen.append(messages(failure.value).replace(path, "PATH"))
    assert len(set(seen)) == 1, f"the same refusal whether the path exists or not: {seen}"
    assert "InvalidInput" in seen[0] or "invalid ImageJob" in seen[0]
    assert not (tmp_path / "store").exists(), "nothing was read into the store"

    # a workflow that hands the activity a path itself (an old or a hand-made one) is refused the same way
    activities = ReferenceActivities(store)
    refused = []
    for path in paths:
        with pytest.raises(Exception) as failure:
            await ActivityEnvironment().run(
                activities.store_references, StoreReferencesRequest(workflow_id="w", references=[path])
            )
        assert getattr(failure.value, "non_retryable", False), "refused at once, never retried"
        refused.append(messages(failure.value).replace(path, "PATH"))
    assert len(set(refused)) == 1, f"the same refusal whether the path exists or not: {refused}"
    assert not (tmp_path / "store").exists()


def test_the_job_takes_uploaded_artifacts_and_http_urls_only():
    data = png(2)
    sha = hashlib.sha256(data).hexdigest()
    uploaded = ArtifactRef(key=reference_key(sha, "png"), sha256=sha, size=len(data), content_type="image/png")
    job = ImageJob(prompt="a cat", references=[uploaded, "https://example.com/cat.png"])
    assert job.references == [uploaded, "https://example.com/cat.png"]
    assert ImageJob.model_validate_json(job.model_dump_json()) == job
    for bad in ["/etc/hosts.png", "cat.png", "file:///etc/passwd", "data:image/png;base64,AAAA"]:
        with pytest.raises(ValueError, match="uploaded artifact or an http"):
            ImageJob(prompt="a cat", references=[bad])
    # an artifact reference names only an upload, under its own content address
    for key in ["runs/other-run/iteration-01.png", f"uploads/{'0' * 64}.png", f"uploads/{sha}.png/../x"]:
        with pytest.raises(ValueError, match="uploaded artifact"):
            ImageJob(prompt="a cat", references=[uploaded.model_copy(update={"key": key})])


@pytest.mark.parametrize("storage", ["local", "s3"])
async def test_the_cli_uploads_a_local_reference_and_the_run_uses_it(dev_env, tmp_path, request, storage):
    extra: dict[str, str] = {}
    store = LocalStore(tmp_path / "data" / "artifacts")
    if storage == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = f"refs-{uuid.uuid4().hex[:8]}"
        extra = dict(ATELIER_STORAGE="s3", S3_ENDPOINT=endpoint, S3_ACCESS_KEY="test", S3_SECRET_KEY="test-secret",
                     S3_BUCKET=bucket, S3_SECURE="false")  # fmt: skip
        store = S3Store(endpoint, "test", "test-secret", bucket, secure=False)
    env = atelier_env(tmp_path, address_of(dev_env), **extra)
    local = tmp_path / "style.png"
    local.write_bytes(png(9))
    sha = hashlib.sha256(png(9)).hexdigest()
    async with running_workers(dev_env.client, OfflineProvider(), store):
        args = ["image", "a fox", "--refs", str(local), "--max-iterations", "1", "--technical-weight", "0"]
        done = await asyncio.to_thread(cli_main, *args, "--id", "refs-e2e", "--out", str(tmp_path / "out"), env=env)
        assert done.returncode == 0, done.stderr
        again = await asyncio.to_thread(cli_main, *args, "--id", "refs-e2e-2", "--out", str(tmp_path / "out2"), env=env)
        assert again.returncode == 0, again.stderr  # the same upload, under the same key
    result = json.loads(done.stdout)
    assert result["final_score"] is not None and result["best_image_url"]
    history = await dev_env.client.get_workflow_handle("refs-e2e").fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads[0].data
    sent = json.loads(started)["references"]
    assert sent == [{"key": f"uploads/{sha}.png", "sha256": sha, "size": len(png(9)), "content_type": "image/png"}]
    assert str(local) not in started.decode(), "the worker never sees the CLI's path"
    assert await store.read(f"uploads/{sha}.png") == png(9)
    assert await store.read("runs/refs-e2e/refs/00.png") == png(9), "the run keeps its copy, as before"

    missing = cli_main("image", "a fox", "--refs", str(tmp_path / "gone.png"), "--id", "refs-missing", env=env)
    assert missing.returncode == 2 and "no such file" in missing.stderr and len(missing.stderr.splitlines()) == 1
    assert [wf.id async for wf in dev_env.client.list_workflows("WorkflowId = 'refs-missing'")] == []

"""With the payload codec on, nothing readable goes to history: failure messages and stack traces are
encoded like payloads (the CLI, holding the key, still shows them), and meme results carry keys, not
presigned URLs (minted when the result is read)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import urllib.request
import uuid

from google.protobuf.json_format import MessageToJson

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from activities.providers.openai_provider import OpenAIProvider
from kit.connection import connect
from kit.storage import LocalStore, S3Store
from models.settings import Settings
from tests.conftest import address_of, atelier_env, cli_main, running_workers
from tests.fake_openai import Fault, error_body

CODEC_KEY = base64.b64encode(os.urandom(32)).decode()
SECRET = "a violet giraffe the safety system disliked"


def strings(value) -> list[str]:
    """Every string in a JSON value, and the text of every one that is base64 (payload data)."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    if not isinstance(value, str):
        return []
    try:
        return [value, base64.b64decode(value, validate=True).decode(errors="replace")]
    except ValueError:
        return [value]


def readable(history, text: str) -> bool:
    """Whether a word of `text` can be read anywhere in a history, plainly or base64-decoded."""
    found = " ".join(strings([json.loads(MessageToJson(e)) for e in history.events]))
    return any(word in found for word in text.split() if len(word) > 5)


async def test_a_failed_activitys_message_is_encoded_in_history_and_clear_in_the_cli(dev_env, fake_openai, tmp_path):
    address = address_of(dev_env)
    sealed = await connect(Settings(TEMPORAL_ADDRESS=address, ATELIER_CODEC_KEY=CODEC_KEY))
    bad_request = Fault(status=400, body=error_body(f"the picture shows {SECRET}", "invalid_request"))
    fake_openai.fail("responses", *[bad_request] * 10)
    provider = OpenAIProvider(Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="test-key"))
    env = atelier_env(tmp_path, address, ATELIER_CODEC_KEY=CODEC_KEY)
    workflow_id = f"sealed-failure-{uuid.uuid4().hex[:6]}"
    async with running_workers(sealed, provider, LocalStore(tmp_path / "data" / "artifacts")):
        done = await asyncio.to_thread(
            cli_main, "image", "a giraffe", "--max-iterations", "1", "--technical-weight", "0", "--id", workflow_id,
            env=env,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert SECRET in done.stderr, "the CLI, holding the key, shows the provider's message"

    history = await dev_env.client.get_workflow_handle(workflow_id).fetch_history()  # no codec: what Temporal keeps
    failures = [
        e.activity_task_failed_event_attributes.failure
        for e in history.events
        if e.HasField("activity_task_failed_event_attributes")
    ]
    assert failures, "the activity failed"
    assert not readable(history, SECRET), "no word of the message is readable in history"
    assert all(f.message == "Encoded failure" and not f.stack_trace for f in failures)
    assert all(f.encoded_attributes.metadata["encoding"] == b"binary/encrypted" for f in failures)


async def test_meme_results_carry_keys_and_the_cli_mints_the_link(dev_env, s3_endpoint, tmp_path):
    bucket = f"memes-{uuid.uuid4().hex[:8]}"
    s3 = dict(ATELIER_STORAGE="s3", S3_ENDPOINT=s3_endpoint, S3_ACCESS_KEY="test", S3_SECRET_KEY="test-secret",
              S3_BUCKET=bucket, S3_SECURE="false")  # fmt: skip
    store = S3Store(s3_endpoint, "test", "test-secret", bucket, secure=False)
    env = atelier_env(tmp_path, address_of(dev_env), **s3)
    provider = GuardedProvider(OfflineProvider(), None)
    printed = []
    async with running_workers(dev_env.client, provider, store):
        for run in ("meme-made", "meme-cached"):  # the second is an identical request: a cache hit
            args = ("meme", "working from home", "--format", "drake", "--target-score", "0", "--id", run)
            done = await asyncio.to_thread(cli_main, *args, "--out", str(tmp_path / run), env=env)
            assert done.returncode == 0, done.stderr
            printed.append(json.loads(done.stdout))
    assert [p["cache"] for p in printed] == ["miss", "hit"]
    for run, result in zip(("meme-made", "meme-cached"), printed, strict=True):
        history = await dev_env.client.get_workflow_handle(run).fetch_history()
        found = " ".join(strings([json.loads(MessageToJson(e)) for e in history.events]))
        assert "X-Amz-Signature" not in found and "X-Amz-Credential" not in found, "no presigned URL in history"
        assert result["image"]["key"].startswith("memes/"), "the result names the published meme by key"
        assert "X-Amz-Signature" in result["url"], "the CLI presigns the link when it shows the result"
        with urllib.request.urlopen(result["url"], timeout=10) as response:  # moto, on loopback
            assert response.read() == await store.read(result["image"]["key"])

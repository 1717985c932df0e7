"""Conversations over the API: a reply as JSON, or streamed as it is written; the history; tenants."""

from __future__ import annotations

import json

import pytest

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.api_keys import KeyStore
from kit.storage import LocalStore
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of, running_workers

pytestmark = pytest.mark.slow  # a dev server, workers and uvicorn


@pytest.fixture(scope="module")
async def api(module_dev_env, tmp_path_factory):
    settings = api_settings(address_of(module_dev_env), tmp_path_factory.mktemp("talk"))
    async with (
        running_workers(
            module_dev_env.client, GuardedProvider(OfflineProvider(), None), LocalStore(settings.artifact_dir)
        ),
        serving(settings, module_dev_env.client) as served,
    ):
        yield served


async def test_a_conversation_replies_as_json_and_streamed_and_keeps_its_history(api):
    base, settings = api
    store = KeyStore(settings.api_keys_path)
    acme, zeta = store.add("acme")[0], store.add("zeta")[0]
    async with http(base, acme) as client, http(base, zeta) as other:
        started = await client.post("/v1/conversations", json={"config": {"retrieval_wait_s": 5}})
        assert started.status_code == 201, started.text
        conversation = started.json()
        first = await client.post(conversation["messages"], json={"text": "I keep bees in Lisbon."})
        assert first.status_code == 200 and first.json()["turn"] == 1 and first.json()["text"]

        events, fields = [], {}
        headers = {"Accept": "text/event-stream"}
        async with client.stream(
            "POST", conversation["messages"], json={"text": "What do I keep?"}, headers=headers
        ) as s:
            assert s.headers["content-type"].startswith("text/event-stream")
            async for line in s.aiter_lines():
                if line.startswith(("event:", "data:")):
                    name, _, value = line.partition(":")
                    fields[name] = value.strip()
                elif not line and fields:
                    events.append((fields["event"], json.loads(fields["data"])))
                    fields = {}
        kinds = [kind for kind, _ in events]
        assert kinds[-1] == "reply" and "phase" in kinds and "text" in kinds
        reply = events[-1][1]
        assert reply["turn"] == 2
        written = "".join(data["text"] for kind, data in events if kind == "text")
        assert reply["text"].startswith(written[:20]), "the streamed answer is the reply's"

        history = (await client.get(f"/v1/conversations/{conversation['id']}")).json()
        assert history["turns_total"] == 2 and [t["user"] for t in history["recent"]] == [
            "I keep bees in Lisbon.",
            "What do I keep?",
        ]
        assert (await other.get(f"/v1/conversations/{conversation['id']}")).status_code == 404
        refused = await other.post(conversation["messages"].replace(base, ""), json={"text": "hi"})
        assert refused.status_code == 404
        blank = await client.post(conversation["messages"], json={"text": "   "})
        assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "body.text"


async def test_each_tenant_has_its_own_knowledge_base(api):
    base, settings = api
    store = KeyStore(settings.api_keys_path)
    acme, zeta = store.add("kb_acme")[0], store.add("kb_zeta")[0]
    async with http(base, acme) as a, http(base, zeta) as z:
        fact = b"# Lighthouse\n\nThe lighthouse keeper's cat is called Biscuit and sleeps on the lamp room stairs."
        other = b"# Bakery\n\nThe baker's dog is called Pretzel and guards the flour sacks every night."
        added = await a.post("/v1/knowledge", files=[("files", ("cat.md", fact, "text/markdown"))])
        assert added.status_code == 201 and added.json()["done"], added.text
        doc_id = added.json()["documents"][0]["doc_id"]
        assert (await z.post("/v1/knowledge", files=[("files", ("dog.md", other, "text/markdown"))])).status_code == 201
        assert [d["doc_id"] for d in (await a.get("/v1/knowledge")).json()] == [doc_id]
        assert doc_id not in [d["doc_id"] for d in (await z.get("/v1/knowledge")).json()]

        talk = (await a.post("/v1/conversations", json={"config": {"retrieval_wait_s": 30}})).json()
        reply = (
            await a.post(talk["messages"], json={"text": "What is the name of the lighthouse keeper's cat?"})
        ).json()
        kb = [c for c in reply["citations"] if c["source"] == "kb"]
        assert kb and all(c["ref"].startswith(doc_id) for c in kb), "only acme's own documents are searched"

        assert (await z.delete(f"/v1/knowledge/{doc_id}")).status_code == 404
        assert (await a.delete(f"/v1/knowledge/{doc_id}")).status_code == 204
        assert (await a.get("/v1/knowledge")).json() == []
        bad = await a.post("/v1/knowledge", files=[("files", ("x.bin", b"\xff\xfe\x00", "application/octet-stream"))])
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.files.0"


async def test_an_ingest_still_embedding_answers_202_with_the_run_to_follow(dev_env, tmp_path):
    """No worker here: the ingest cannot finish within ATELIER_INGEST_WAIT_S, so the create says it is not done."""
    settings = api_settings(address_of(dev_env), tmp_path, ATELIER_INGEST_WAIT_S=0.5)
    tide = b"# Tides\n\nThe harbour floods twice a day, an hour later each day."
    async with serving(settings, dev_env.client) as (base, _), http(base) as client:
        waiting = await client.post("/v1/knowledge", files=[("files", ("tide.md", tide, "text/markdown"))])
    assert waiting.status_code == 202, waiting.text
    assert waiting.json()["done"] is False and waiting.json()["documents"] == [] and waiting.json()["id"]

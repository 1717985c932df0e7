"""Bounded growth and exposure: the call log rotates and is written off the event loop, the workers' caches
forget the least recently used first, the codec server refuses other hosts, big bodies and missing tokens."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import threading

import pytest

from activities.providers.call_log import CallLog, read_log
from models.settings import Settings
from starter.codec_server import MAX_BODY, make_server

CODEC_KEY = base64.b64encode(bytes(range(32))).decode()


async def test_the_call_log_rotates_by_size_and_keeps_a_bounded_number_of_files(tmp_path):
    path = tmp_path / "calls.jsonl"
    log = CallLog(path, max_bytes=400, files=3)
    for n in range(60):
        await log.write({"call": "structured", "n": n})
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["calls.jsonl", "calls.jsonl.1", "calls.jsonl.2"], "the oldest files are dropped"
    assert all(p.stat().st_size <= 400 for p in tmp_path.iterdir())
    numbers = [entry["n"] for entry in read_log(path)]
    assert numbers == list(range(numbers[0], 60)) and numbers[0] > 0, "the newest entries, in order"


async def test_the_call_log_is_written_off_the_event_loop(tmp_path, monkeypatch):
    threads = []
    log = CallLog(tmp_path / "calls.jsonl")
    original = log.append
    monkeypatch.setattr(log, "append", lambda line: (threads.append(threading.get_ident()), original(line)))
    await log.write({"call": "image"})
    assert threads and threads[0] != threading.get_ident(), "the file is touched in a worker thread"
    assert read_log(tmp_path / "calls.jsonl") == [{"call": "image"}], "and is on disk when write returns"


def test_knowledge_caches_are_bounded():
    import torch
    from cachetools import LRUCache

    from activities.knowledge import KnowledgeActivities

    class Embedder:
        calls = 0

        def embed(self, texts):
            Embedder.calls += len(texts)
            return torch.ones(len(texts), 384)

    acts = KnowledgeActivities(store=None, embedder=Embedder())  # type: ignore[arg-type]
    acts._vectors = LRUCache(3)
    asyncio.run(acts._embed(["a", "b", "c"]))
    asyncio.run(acts._embed(["a", "d"]))  # a is used again, d pushes out the least recently used: b
    asyncio.run(acts._embed(["a", "c", "d"]))
    assert Embedder.calls == 4 and len(acts._vectors) == 3, "a, c, d were still cached; only b was forgotten"


@pytest.fixture
def codec_server():
    servers = []

    def start(**settings: str):
        server = make_server(Settings(ATELIER_CODEC_KEY=CODEC_KEY, **settings), port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()


def post(port: int, body: bytes, **headers: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", "/decode", skip_host=True)
    for name, value in ({"host": f"127.0.0.1:{port}", "content-length": str(len(body))} | headers).items():
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(body)
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def test_the_codec_server_answers_only_loopback_names(codec_server):
    port = codec_server()
    assert post(port, b'{"payloads": []}')[0] == 200
    assert post(port, b'{"payloads": []}', host=f"localhost:{port}")[0] == 200
    status, body = post(port, b'{"payloads": []}', host=f"attacker.example:{port}")
    assert status == 421 and "not served" in body["error"], "a rebound name is refused"


def test_the_codec_server_refuses_a_body_past_its_cap_unread(codec_server):
    port = codec_server()
    status, body = post(port, b"{}", **{"content-length": str(MAX_BODY + 1)})
    assert status == 413 and str(MAX_BODY) in body["error"]


def test_the_codec_server_wants_its_token_when_it_has_one(codec_server):
    port = codec_server(ATELIER_CODEC_TOKEN="s3cret")
    assert post(port, b'{"payloads": []}')[0] == 401
    assert post(port, b'{"payloads": []}', authorization="Bearer wrong")[0] == 401
    assert post(port, b'{"payloads": []}', authorization="Bearer s3cret")[0] == 200

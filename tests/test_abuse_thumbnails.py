"""Pictures under abuse (#41): thumbnails of a large picture asked for at once are decoded once per key and
width, on a few threads of their own, with the API's memory bounded; a thumbnail to make counts against the
caller's rate while one already made is free; an upload (or an artifact) over the pixel cap is never decoded;
another tenant's artifact is served while thumbnails are being made; and no artifact is a page on the API's
origin. Real uvicorn (and a real `serve` process) on loopback, a real dev server."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
import threading
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kit.api_keys import KeyStore
from kit.storage import LocalStore
from models.settings import Settings
from starter.api import originals, thumbnails
from starter.api.service import Service
from starter.app import create_app
from tests import api_support
from tests.api_support import api_settings, http
from tests.conftest import address_of, atelier_env, eventually, free_port, spawn, stop_process

MB = 1024 * 1024


def flat_png(width: int, height: int, channels: int = 4) -> bytes:
    """A PNG of one colour, written row by row (so no picture of that size is ever held here): a few hundred
    KB that decode to width × height × 4 bytes."""
    row = b"\x00" + b"\x78" * (width * channels)
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    colour = {1: 0, 3: 2, 4: 6}[channels]

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@contextlib.asynccontextmanager
async def api(monkeypatch, settings: Settings, client) -> AsyncIterator[tuple[str, Service]]:
    """The API on loopback (`api_support.serving`) and its `Service`, to read what its thumbnails did."""
    apps = []
    monkeypatch.setattr(api_support, "create_app", lambda *args: apps.append(create_app(*args)) or apps[-1])
    async with api_support.serving(settings, client) as (base, _):
        yield base, apps[0].state.service


class Gate:
    """Stands before the real decode: every decode waits here until the test opens it."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.arrived = 0
        self._lock = threading.Lock()

    def __call__(self, *args):
        with self._lock:
            self.arrived += 1
        if not self.opened.wait(60):
            raise TimeoutError("the gate was never opened")
        return REAL_THUMBNAIL(*args)


REAL_THUMBNAIL = thumbnails.thumbnail


async def test_concurrent_misses_of_a_large_picture_decode_once_per_width(module_dev_env, tmp_path, monkeypatch):
    settings = api_settings(address_of(module_dev_env), tmp_path)
    await LocalStore(settings.artifact_dir).put("runs/demo/big.png", flat_png(3000, 2000), "image/png")
    async with api(monkeypatch, settings, module_dev_env.client) as (base, svc), http(base) as client:
        asked = [client.get("/v1/artifacts/runs/demo/big.png", params={"width": w}) for w in (192, 384) * 12]
        answers = await asyncio.gather(*asked)
        assert [a.status_code for a in answers] == [200] * 24
        assert {a.headers["content-type"] for a in answers} == {"image/webp"}
        assert len({a.content for a in answers}) == 2, "one thumbnail per width, the same for every asker"
        assert svc.thumbnails.decodes == 2, "24 misses at once, one decode per key and width"
        again = await client.get("/v1/artifacts/runs/demo/big.png", params={"width": 192})
        assert again.content == answers[0].content and svc.thumbnails.decodes == 2, "kept"


async def test_a_thumbnail_to_make_is_charged_to_the_caller_and_one_already_made_is_free(
    module_dev_env, tmp_path, monkeypatch
):
    settings = api_settings(address_of(module_dev_env), tmp_path, ATELIER_API_RATE_PER_MINUTE=2)
    key = KeyStore(settings.api_keys_path).add("acme")[0]
    store = LocalStore(settings.artifact_dir)
    for name in ("a", "b"):
        await store.put(f"runs/acme.image-1/{name}.png", flat_png(300, 200), "image/png")
    async with api(monkeypatch, settings, module_dev_env.client) as (base, svc), http(base, key) as acme:
        made = [await acme.get("/v1/artifacts/runs/acme.image-1/a.png", params={"width": w}) for w in (96, 192)]
        assert [m.status_code for m in made] == [200, 200]
        refused = await acme.get("/v1/artifacts/runs/acme.image-1/b.png", params={"width": 96})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert svc.thumbnails.decodes == 2, "a refused miss decodes nothing"
        for _ in range(5):  # a page of pictures shown again, and the originals: free
            for width in (96, 192):
                kept = await acme.get("/v1/artifacts/runs/acme.image-1/a.png", params={"width": width})
                assert kept.status_code == 200 and kept.headers["content-type"] == "image/webp"
            original = await acme.get("/v1/artifacts/runs/acme.image-1/b.png")
            assert original.status_code == 200 and original.headers["content-type"] == "image/png"


async def test_a_picture_over_the_pixel_cap_is_neither_uploaded_nor_sized_down(module_dev_env, tmp_path, monkeypatch):
    settings = api_settings(address_of(module_dev_env), tmp_path)
    huge = flat_png(8192, 8192, channels=1)  # 67 MP in a few hundred KB
    await LocalStore(settings.artifact_dir).put("runs/demo/huge.png", huge, "image/png")
    async with api(monkeypatch, settings, module_dev_env.client) as (base, _), http(base) as client:
        upload = await client.post("/v1/uploads", files={"file": ("huge.png", huge, "image/png")})
        assert upload.status_code == 422, upload.text
        assert upload.json()["errors"][0]["field"] == "body.file" and "8192x8192" in upload.json()["detail"]
        small = await client.post("/v1/uploads", files={"file": ("small.png", flat_png(64, 64), "image/png")})
        assert small.status_code == 201, small.text
        # written by a worker, not uploaded: still never decoded whole
        sized = await client.get("/v1/artifacts/runs/demo/huge.png", params={"width": 192})
        assert sized.status_code == 422 and "too large" in sized.json()["detail"]
        assert (await client.get("/v1/artifacts/runs/demo/huge.png")).content == huge, "the original is served"


async def test_artifacts_never_run_as_pages_on_the_apis_origin(module_dev_env, tmp_path, monkeypatch):
    settings = api_settings(address_of(module_dev_env), tmp_path)
    store = LocalStore(settings.artifact_dir)
    page = b"<html><script>fetch('/v1/runs')</script></html>"
    await store.put("worlds/demo/index.html", page, "text/html")
    await store.put("worlds/demo/mark.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>", "image/svg+xml")
    await store.put("worlds/demo/icon.png", flat_png(32, 32), "image/png")
    async with api(monkeypatch, settings, module_dev_env.client) as (base, _), http(base) as client:
        for name in ("index.html", "mark.svg"):
            served = await client.get(f"/v1/artifacts/worlds/demo/{name}")
            assert served.status_code == 200 and served.headers["content-security-policy"] == "sandbox"
            assert served.headers["content-disposition"] == f"attachment; filename*=UTF-8''{name}"
            assert served.headers["x-content-type-options"] == "nosniff"
        for params in ({}, {"width": 96}):  # pictures show inline, still sandboxed
            picture = await client.get("/v1/artifacts/worlds/demo/icon.png", params=params)
            assert picture.status_code == 200 and "content-disposition" not in picture.headers
            assert picture.headers["content-security-policy"] == "sandbox"
            unchanged = await client.get(picture.url, headers={"If-None-Match": picture.headers["etag"]})
            assert unchanged.status_code == 304 and unchanged.headers["content-security-policy"] == "sandbox"


async def test_another_tenants_artifact_is_served_while_thumbnails_are_being_made(
    module_dev_env, tmp_path, monkeypatch
):
    settings = api_settings(
        address_of(module_dev_env), tmp_path, ATELIER_THUMBNAIL_WORKERS=2, ATELIER_THUMBNAIL_QUEUE=4
    )
    keys = KeyStore(settings.api_keys_path)
    acme, zeta = keys.add("acme")[0], keys.add("zeta")[0]
    store = LocalStore(settings.artifact_dir)
    for n in range(6):
        await store.put(f"runs/acme.image-1/{n}.png", flat_png(1200, 800), "image/png")
    await store.put("runs/zeta.image-1/small.png", flat_png(16, 16), "image/png")
    gate = Gate()
    monkeypatch.setattr(thumbnails, "thumbnail", gate)
    async with (
        api(monkeypatch, settings, module_dev_env.client) as (base, svc),
        http(base, acme) as abuser,
        http(base, zeta) as other,
    ):
        misses = [
            asyncio.create_task(abuser.get(f"/v1/artifacts/runs/acme.image-1/{n}.png", params={"width": 768}))
            for n in range(6)
        ]
        try:
            await eventually(lambda: gate.arrived == 2 and len(svc.thumbnails.making) == 4, 30, "decodes under way")
            await eventually(lambda: sum(m.done() for m in misses) == 2, 30, "misses past the queue answered")
            busy = [m.result() for m in misses if m.done()]
            assert [b.status_code for b in busy] == [503, 503] and busy[0].headers["retry-after"] == "1"
            served = await other.get("/v1/artifacts/runs/zeta.image-1/small.png")
            assert served.status_code == 200 and served.content == flat_png(16, 16)
            assert gate.arrived == 2, "both decoding threads are still held"
        finally:
            gate.opened.set()
        answers = await asyncio.gather(*misses)
        assert sorted(a.status_code for a in answers) == [200] * 4 + [503] * 2
        assert svc.thumbnails.decodes == 4 and not svc.thumbnails.making


def vm_kb(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(f"{field}:")))


@pytest.mark.slow  # a `serve` process
async def test_a_burst_of_thumbnails_of_large_pictures_keeps_the_apis_memory_bounded(module_dev_env, tmp_path):
    port = free_port()
    env = atelier_env(tmp_path, address_of(module_dev_env), ATELIER_API_PORT=str(port), ATELIER_THUMBNAIL_WORKERS="2")
    store = LocalStore(tmp_path / "data" / "artifacts")
    side = 4800  # 23 MP, just under the pixel cap: 92 MB decoded
    big = flat_png(side, side)
    for n in range(3):
        await store.put(f"runs/demo/big-{n}.png", big, "image/png")
    await store.put("runs/demo/small.png", flat_png(64, 64), "image/png")
    with open(tmp_path / "serve.log", "w") as log:
        serve = spawn([sys.executable, "-m", "starter", "serve"], env=env, stdout=log, stderr=log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:

            async def up() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    return (await client.get("/v1/artifacts/runs/demo/small.png", params={"width": 96})).is_success
                return False

            await eventually(up, 60, "the API answering")  # and a thumbnail made: the codecs are loaded
            before = vm_kb(serve.pid, "VmHWM")
            asked = [
                client.get(f"/v1/artifacts/runs/demo/big-{n}.png", params={"width": w})
                for n in range(3)
                for w in thumbnails.WIDTHS
                for _ in range(2)
            ]
            answers = await asyncio.gather(*asked)
            assert {a.status_code for a in answers} == {200}
            grown_mb = (vm_kb(serve.pid, "VmHWM") - before) / 1024
        # two threads decode, each holding one picture (and a band of it, reduced): the peak stays under four
        # pictures' worth, where the shared thread pool held six at a time, each with a premultiplied copy
        picture_mb = side * side * 4 / MB
        assert grown_mb < 4 * picture_mb, f"peak memory grew {grown_mb:.0f} MB"
    finally:
        stop_process(serve)


async def test_originals_are_read_a_few_at_a_time_and_a_matching_etag_reads_nothing(
    module_dev_env, tmp_path, monkeypatch
):
    """Whole artifacts are held in memory while they are sent: 24 at once of a 4 MB file are read at most
    `AT_ONCE` at a time, and a conditional request with the kept ETag is a 304 that reads nothing."""
    settings = api_settings(address_of(module_dev_env), tmp_path)
    await LocalStore(settings.artifact_dir).put("runs/demo/original.bin", b"\x01" * (4 * MB), "application/x-demo")
    async with api(monkeypatch, settings, module_dev_env.client) as (base, svc), http(base) as client:
        reading, most, reads = 0, 0, 0
        read = svc.store.read

        async def counted(key: str) -> bytes:
            nonlocal reading, most, reads
            reading, reads = reading + 1, reads + 1
            most = max(most, reading)
            try:
                await asyncio.sleep(0.05)  # a slow store: the reads overlap if nothing holds them back
                return await read(key)
            finally:
                reading -= 1

        monkeypatch.setattr(svc.store, "read", counted)
        answers = await asyncio.gather(*(client.get("/v1/artifacts/runs/demo/original.bin") for _ in range(24)))
        assert {a.status_code for a in answers} == {200} and len(answers[0].content) == 4 * MB
        assert most <= originals.AT_ONCE, f"{most} originals in memory at once"
        etag, before = answers[0].headers["etag"], reads
        again = await client.get("/v1/artifacts/runs/demo/original.bin", headers={"If-None-Match": etag})
        assert again.status_code == 304 and reads == before, "a matching ETag reads nothing"

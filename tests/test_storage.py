"""Claim-check storage: the local backend and the MinIO backend against moto's S3 server."""

from __future__ import annotations

import hashlib
import os

import pytest

from kit.files import write_atomic
from kit.storage import ArtifactIntegrityError, LocalStore, S3Store, load, make_store, run_key
from models.settings import Settings


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "artifacts")
    endpoint = request.getfixturevalue("s3_endpoint")
    settings = Settings(
        ATELIER_STORAGE="s3", S3_ENDPOINT=endpoint, S3_ACCESS_KEY="test", S3_SECRET_KEY="test-secret",
        S3_BUCKET=f"atelier-{tmp_path.name.lower().replace('_', '-')[-30:]}", S3_SECURE=False,
    )  # fmt: skip
    built = make_store(settings)
    assert isinstance(built, S3Store)
    return built


async def test_put_read_roundtrip_with_sha256(store):
    ref = await store.put(run_key("wf-1", "iteration-01.png"), b"image-bytes", "image/png")
    assert ref.key == "runs/wf-1/iteration-01.png"
    assert ref.sha256 == hashlib.sha256(b"image-bytes").hexdigest() and ref.size == 11
    assert await load(store, ref) == b"image-bytes"
    assert await store.exists(ref.key)
    assert not await store.exists("runs/wf-1/missing.png")


async def test_retried_put_overwrites_instead_of_duplicating(store):
    key = run_key("wf-2", "iteration-01.png")
    await store.put(key, b"first attempt", "image/png")
    ref = await store.put(key, b"second attempt", "image/png")
    assert await load(store, ref) == b"second attempt"


async def test_integrity_is_checked(store):
    ref = await store.put(run_key("wf-3", "a.png"), b"one", "image/png")
    await store.put(ref.key, b"two", "image/png")
    with pytest.raises(ArtifactIntegrityError):
        await load(store, ref)


def test_keys_are_deterministic_and_safe():
    assert run_key("image/../../etc", "x y.png") == "runs/image_.._.._etc/x_y.png"
    assert run_key("wf", "refs", "00.png") == "runs/wf/refs/00.png", "the same run and part give the same key"
    assert run_key("wf-1", "refs", "00.png") != run_key("wf-2", "refs", "00.png")


async def test_local_store_refuses_escaping_keys(tmp_path):
    with pytest.raises(ValueError):
        await LocalStore(tmp_path).put("../outside.png", b"x", "image/png")


def test_s3_settings_are_required():
    with pytest.raises(ValueError, match="S3_ENDPOINT"):
        make_store(Settings(ATELIER_STORAGE="s3"))


async def test_keys_delete_and_url(store):
    for name in ("b.json", "a.json", "sub/c.json"):
        await store.put(f"kb/docs/{name}", b"{}", "application/json")
    await store.put("kb/other.json", b"{}", "application/json")
    assert await store.keys("kb/docs") == ["kb/docs/a.json", "kb/docs/b.json", "kb/docs/sub/c.json"]
    assert await store.keys("nothing/here") == []
    assert await store.delete("kb/docs/a.json") and not await store.delete("kb/docs/a.json")
    assert await store.keys("kb/docs") == ["kb/docs/b.json", "kb/docs/sub/c.json"]
    url = await store.url("kb/docs/b.json")
    assert url.endswith("kb/docs/b.json") or "kb/docs/b.json?" in url  # a path, or a presigned URL
    if isinstance(store, S3Store):
        assert "X-Amz-Signature=" in url and "test-secret" not in url


async def test_presigned_urls_name_the_public_endpoint(s3_endpoint, tmp_path):
    """Workers reach MinIO as minio:9000 inside compose; people follow links to the public host."""
    settings = Settings(
        ATELIER_STORAGE="s3", S3_ENDPOINT=s3_endpoint, S3_ACCESS_KEY="test", S3_SECRET_KEY="test-secret",
        S3_BUCKET="atelier-public", S3_SECURE=False, S3_PUBLIC_ENDPOINT="files.example.invalid:9000",
    )  # fmt: skip
    store = make_store(settings)
    ref = await store.put("memes/abc.png", b"png", "image/png")
    url = await store.url(ref.key)  # signed without contacting the (unreachable) public host
    assert url.startswith("http://files.example.invalid:9000/atelier-public/memes/abc.png?")
    assert "X-Amz-Signature=" in url and "test-secret" not in url
    assert await load(store, ref) == b"png", "reads still go to S3_ENDPOINT"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
async def test_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "out" / "index.html", b"<html>")
        ref = await LocalStore(tmp_path / "artifacts").put("worlds/w/manifest.json", b"{}", "application/json")
    finally:
        os.umask(old)
    for path in (tmp_path / "out" / "index.html", tmp_path / "artifacts" / ref.key):
        assert path.stat().st_mode & 0o777 == mode, oct(path.stat().st_mode)

"""Artifact store (claim check): local folder by default, MinIO/S3 when configured.

Keys are deterministic (run id + step), so a retried activity overwrites its own
artifact instead of leaving a duplicate behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from kit.files import write_atomic
from models.artifacts import ArtifactRef
from models.settings import Settings

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_segment(value: str) -> str:
    """A key segment made of safe characters only (workflow ids may hold anything)."""
    cleaned = _UNSAFE.sub("_", value).strip("._") or "_"
    return cleaned[:120]


def artifact_key(*segments: str) -> str:
    """A deterministic key made of safe segments."""
    return "/".join(safe_segment(s) for s in segments)


def run_key(workflow_id: str, *parts: str) -> str:
    """Key of an artifact of one image run: `runs/<run>/<part>/...`."""
    return artifact_key("runs", workflow_id, *parts)


def world_key(world_id: str, *parts: str) -> str:
    """Key of an artifact of one world: `worlds/<world>/<part>/...`."""
    return artifact_key("worlds", world_id, *parts)


def kb_prefix(knowledge: str | None = None) -> str:
    """Where a knowledge base's documents live: `kb/docs` (the shared one), `kb/tenants/<name>/docs`."""
    return artifact_key("kb", "docs") if knowledge is None else artifact_key("kb", "tenants", knowledge, "docs")


def kb_doc_key(doc_id: str, knowledge: str | None = None) -> str:
    """Key of one knowledge-base document (chunks and embeddings): `<kb prefix>/<doc id>.json`."""
    return f"{kb_prefix(knowledge)}/{safe_segment(doc_id)}.json"


def kb_source_key(digest: str, name: str, knowledge: str | None = None) -> str:
    """Key of a document's text as it was added: `kb/sources/<digest>-<name>` (`kb/tenants/<name>/sources/…`)."""
    where = ("kb",) if knowledge is None else ("kb", "tenants", knowledge)
    return artifact_key(*where, "sources", f"{digest[:16]}-{name}")


def turn_key(conversation_id: str, number: int) -> str:
    """Key of one archived conversation turn: `conversations/<id>/turns/NNNNN.json`."""
    return artifact_key("conversations", conversation_id, "turns", f"{number:05d}.json")


def events_prefix(run_id: str) -> str:
    """Where a run's events are recorded, a batch a file: `events/<run id>/<first seq>.json`."""
    return artifact_key("events", run_id)


def batch_key(run_id: str, first_seq: int) -> str:
    """Key of one recorded batch of a run's events, named by its first event's sequence number."""
    return f"{events_prefix(run_id)}/{first_seq:08d}.json"


def deliveries_key(workflow_id: str, stamp: datetime | None = None, first: int = 0) -> str:
    """Where a webhook's finished deliveries are recorded (`models.deliveries`), a file per write named by when
    it was written and its first record's number, so the names sort in the order written; no stamp: the prefix."""
    prefix = f"{artifact_key('deliveries', workflow_id)}/"
    return prefix if stamp is None else f"{prefix}{stamp:%Y%m%dT%H%M%S%f}-{first:08d}.json"


def make_ref(key: str, data: bytes, content_type: str) -> ArtifactRef:
    return ArtifactRef(key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data), content_type=content_type)


class ArtifactIntegrityError(Exception):
    """The stored bytes do not match the reference's sha256."""


class ArtifactStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> ArtifactRef: ...

    async def read(self, key: str) -> bytes: ...

    async def put_new(self, key: str, data: bytes, content_type: str) -> bool:
        """Store the artifact only if the key is free; False when something is already there."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def url(self, key: str) -> str:
        """Where a person can fetch the artifact: a file path, or a presigned URL."""
        ...

    async def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix/`, sorted."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove an artifact; False when there was none."""
        ...


async def load(store: ArtifactStore, ref: ArtifactRef) -> bytes:
    """Read an artifact and check it is the one the reference names."""
    data = await store.read(ref.key)
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ArtifactIntegrityError(f"artifact {ref.key} does not match its sha256")
    return data


class LocalStore:
    """Artifacts as files under one folder; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"artifact key escapes the store: {key}")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> ArtifactRef:
        await asyncio.to_thread(write_atomic, self._path(key), data)
        return make_ref(key, data, content_type)

    async def put_new(self, key: str, data: bytes, content_type: str) -> bool:
        return await asyncio.to_thread(write_atomic, self._path(key), data, exclusive=True)

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def url(self, key: str) -> str:
        return str(self._path(key))

    def _keys(self, prefix: str) -> list[str]:
        folder = self._path(prefix)
        root = self.root.resolve()
        files = folder.rglob("*") if folder.is_dir() else []
        return sorted(str(f.relative_to(root)) for f in files if f.is_file() and not f.name.startswith("."))

    async def keys(self, prefix: str) -> list[str]:
        return await asyncio.to_thread(self._keys, prefix)  # a folder walk: off the event loop

    def _delete(self, key: str) -> bool:
        path = self._path(key)
        if not path.is_file():
            return False
        path.unlink()
        return True

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self._delete, key)


class S3Store:
    """Artifacts in a MinIO/S3 bucket through the minio SDK (blocking calls run in threads)."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool,
        public_endpoint: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        from minio import Minio

        self.bucket = bucket
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure)
        # presigning is local arithmetic; with the region given it never calls the (public) endpoint
        self.signer = Minio(
            public_endpoint or endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )
        self._bucket_ready = False

    def _ensure_bucket(self) -> None:
        if not self._bucket_ready:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
            self._bucket_ready = True

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        self._ensure_bucket()
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type=content_type)

    def _read(self, key: str) -> bytes:
        response = self.client.get_object(self.bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def _exists(self, key: str) -> bool:
        from minio.error import S3Error

        try:
            self.client.stat_object(self.bucket, key)
            return True
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchBucket", "NoSuchObject"}:
                return False
            raise

    async def put(self, key: str, data: bytes, content_type: str) -> ArtifactRef:
        await asyncio.to_thread(self._put, key, data, content_type)
        return make_ref(key, data, content_type)

    async def put_new(self, key: str, data: bytes, content_type: str) -> bool:
        """Checked, then written: two writers racing within one request's time can both write (S3's
        conditional `If-None-Match` writes are not in the minio SDK's put_object)."""
        if await self.exists(key):
            return False
        await self.put(key, data, content_type)
        return True

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self._read, key)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._exists, key)

    async def url(self, key: str) -> str:
        """A presigned GET URL, valid for 7 days."""
        return await asyncio.to_thread(self.signer.presigned_get_object, self.bucket, key, timedelta(days=7))

    def _keys(self, prefix: str) -> list[str]:
        self._ensure_bucket()
        found = self.client.list_objects(self.bucket, prefix=prefix.rstrip("/") + "/", recursive=True)
        return sorted(o.object_name for o in found if o.object_name)

    async def keys(self, prefix: str) -> list[str]:
        return await asyncio.to_thread(self._keys, prefix)

    async def delete(self, key: str) -> bool:
        if not await self.exists(key):
            return False
        await asyncio.to_thread(self.client.remove_object, self.bucket, key)
        return True


def make_store(settings: Settings) -> ArtifactStore:
    """The store the settings select."""
    if settings.storage == "s3":
        if not (settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key):
            raise ValueError("ATELIER_STORAGE=s3 needs S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY")
        return S3Store(
            settings.s3_endpoint,
            settings.s3_access_key.get_secret_value(),
            settings.s3_secret_key.get_secret_value(),
            settings.s3_bucket,
            settings.s3_secure,
            settings.s3_public_endpoint,
            settings.s3_region,
        )
    return LocalStore(settings.artifact_dir)

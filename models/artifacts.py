"""Claim-check references: what workflows carry instead of image bytes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ArtifactRef(BaseModel):
    """A stored artifact: its key in the artifact store, size and content hash."""

    key: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    content_type: str = "application/octet-stream"

    @property
    def extension(self) -> str:
        return self.key.rsplit(".", 1)[-1] if "." in self.key.rsplit("/", 1)[-1] else "bin"


REFERENCE_PREFIX = "uploads"  # reference images the CLI uploaded, each under its content address


def reference_key(sha256: str, extension: str) -> str:
    """Where an uploaded reference image lives in the artifact store: `uploads/<sha256>.<ext>`."""
    return f"{REFERENCE_PREFIX}/{sha256}.{extension}"

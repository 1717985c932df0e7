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

"""Schemas of the scoring queue: technical image quality and text embeddings."""

from __future__ import annotations

from pydantic import BaseModel, Field

from models.artifacts import ArtifactRef


class ScoreImagesRequest(BaseModel):
    images: list[ArtifactRef] = Field(min_length=1, max_length=256)


class ImageScore(BaseModel):
    key: str
    score: float = Field(ge=0, le=100)
    breakdown: dict[str, float]


class ImageScores(BaseModel):
    items: list[ImageScore]
    device: str


class TextPairsRequest(BaseModel):
    """Similarity of texts[i] to references[i]."""

    texts: list[str] = Field(min_length=1)
    references: list[str] = Field(min_length=1)


class Similarities(BaseModel):
    values: list[float]


class NearDuplicatesRequest(BaseModel):
    texts: list[str]
    threshold: float = Field(default=0.9, gt=0, le=1)


class DuplicatePair(BaseModel):
    first: int
    second: int
    similarity: float


class NearDuplicates(BaseModel):
    pairs: list[DuplicatePair]

"""The scoring queue: PyTorch image and text scoring, models loaded once per worker process.

Run more `python -m workers --queue scoring` processes (a GPU box, say) to grow the pool: Temporal
spreads the scoring activities over every worker polling the queue.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from temporalio import activity

from activities.heartbeat import heartbeating
from activities.scoring.device import select_device
from activities.scoring.images import ImageScorer
from activities.scoring.text import TextEmbedder, default_model_path
from kit.storage import ArtifactStore, load
from models.scoring import (
    DuplicatePair,
    ImageScore,
    ImageScores,
    NearDuplicates,
    NearDuplicatesRequest,
    ScoreImagesRequest,
    Similarities,
    TextPairsRequest,
)
from models.settings import Settings

log = logging.getLogger("atelier.scoring")


@dataclass(frozen=True)
class Models:
    device: torch.device
    images: ImageScorer
    text: TextEmbedder
    load_seconds: float


@cache
def load_models(device_name: str, text_model: Path | None, batch: int | None) -> Models:
    """Once per process: every ScoringActivities in it shares these."""
    started = time.perf_counter()
    device = select_device(device_name)
    text = TextEmbedder(text_model or default_model_path(), device)
    scorer = ImageScorer(device, batch=batch)
    models = Models(device, scorer, text, time.perf_counter() - started)
    memory = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB RSS"
    if device.type == "cuda":
        memory += f", {torch.cuda.memory_allocated(device) / 2**20:.0f} MiB on the GPU"
    log.info(
        "scoring models on %s loaded in %.2f s (%s); image batches of %d",
        device,
        models.load_seconds,
        memory,
        scorer.batch,
    )
    return models


class ScoringActivities:
    def __init__(self, store: ArtifactStore, settings: Settings) -> None:
        self.store = store
        self.models = load_models(settings.scoring_device, settings.text_model, settings.scoring_batch)

    @activity.defn(name="score_images")
    async def score_images(self, request: ScoreImagesRequest) -> ImageScores:
        """Technical quality of a batch of stored images (one device pass per `batch` images)."""
        images = [await load(self.store, ref) for ref in request.images]
        started = time.perf_counter()
        async with heartbeating(f"scoring {len(images)} images"):
            results = await asyncio.to_thread(self.models.images.score, images)
        rate = len(images) / max(time.perf_counter() - started, 1e-9)
        meter = activity.metric_meter().with_additional_attributes({"device": str(self.models.device)})
        meter.create_counter("atelier_scored_images", "images given a technical score").add(len(images))
        meter.create_histogram("atelier_scoring_batch_size", "images per scoring call").record(len(images))
        for score, _ in results:
            meter.create_histogram("atelier_technical_score", "technical image score, 0-100").record(round(score))
        log.info("scored %d images on %s (%.1f images/s)", len(images), self.models.device, rate)
        items = [
            ImageScore(key=ref.key, score=score, breakdown=parts)
            for ref, (score, parts) in zip(request.images, results, strict=True)
        ]
        return ImageScores(items=items, device=str(self.models.device))

    @activity.defn(name="text_similarity")
    async def text_similarity(self, request: TextPairsRequest) -> Similarities:
        if len(request.texts) != len(request.references):
            raise ValueError("texts and references must pair up")
        async with heartbeating(f"embedding {2 * len(request.texts)} texts"):
            values = await asyncio.to_thread(self.models.text.similarity, request.texts, request.references)
        return Similarities(values=[round(v, 4) for v in values])

    @activity.defn(name="near_duplicates")
    async def near_duplicates(self, request: NearDuplicatesRequest) -> NearDuplicates:
        async with heartbeating(f"comparing {len(request.texts)} texts"):
            pairs = await asyncio.to_thread(self.models.text.near_duplicates, request.texts, request.threshold)
        return NearDuplicates(pairs=[DuplicatePair(first=a, second=b, similarity=round(s, 4)) for a, b, s in pairs])

    def activities(self) -> list:
        return [self.score_images, self.text_similarity, self.near_duplicates]

"""Batched technical image scoring: decode and resize on CPU threads, one metrics pass on the device."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import torch
from PIL import Image

from activities.scoring.image_metrics import score_tensor

SIDE = 1024  # images are scored at this size: a centre crop on the 8-pixel grid, or a resize


def decode(data: bytes, side: int = SIDE) -> torch.Tensor:
    """uint8 (3, side, side). Larger images are cropped on the 8×8 grid so JPEG blocks stay aligned."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
    if rgb.width >= side and rgb.height >= side:
        left, top = ((rgb.width - side) // 2) // 8 * 8, ((rgb.height - side) // 2) // 8 * 8
        rgb = rgb.crop((left, top, left + side, top + side))
    else:
        rgb = rgb.resize((side, side), Image.Resampling.BICUBIC)
    return torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).view(side, side, 3).permute(2, 0, 1)


def default_batch(device: torch.device) -> int:
    """Measured (bench/scoring.py): on a CPU small batches stay in cache; accelerators want many."""
    return 1 if device.type == "cpu" else 32


class ImageScorer:
    def __init__(self, device: torch.device, threads: int = 4, side: int = SIDE, batch: int | None = None) -> None:
        self.device = device
        self.side = side
        self.batch = batch or default_batch(device)
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode")

    def _batch(self, images: list[bytes]) -> torch.Tensor:
        return torch.stack(list(self.pool.map(lambda d: decode(d, self.side), images))).to(self.device)

    @torch.inference_mode()
    def score(self, images: list[bytes], batch_size: int | None = None) -> list[tuple[float, dict[str, float]]]:
        """(score 0..100, metric breakdown) per image, computed `batch_size` images at a time."""
        batch_size = batch_size or self.batch
        results: list[tuple[float, dict[str, float]]] = []
        for start in range(0, len(images), batch_size):
            scores, parts = score_tensor(self._batch(images[start : start + batch_size]))
            rows = {name: values.tolist() for name, values in parts.items()}
            for i, value in enumerate(scores.tolist()):
                results.append((round(value, 2), {name: round(rows[name][i], 4) for name in rows}))
        return results

    def score_one_by_one(self, images: list[bytes]) -> list[tuple[float, dict[str, float]]]:
        """The same metrics image by image (what batching is measured against)."""
        return [self.score([data], batch_size=1)[0] for data in images]

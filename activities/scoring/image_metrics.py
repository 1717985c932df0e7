"""No-reference technical image quality in pure torch, one batched pass on the device.

Input: uint8 tensor (B, 3, H, W). Each metric is 0..1 (1 = good); the technical score is their
weighted geometric mean × 100, so any one bad property pulls the score down.

- sharpness: Laplacian energy of the half-size luminance (half size keeps pixel noise out of it)
- exposure: mean brightness near the middle and few clipped pixels
- contrast: spread of luminance
- colourfulness: Hasler & Süsstrunk's opponent-colour measure
- noise: Immerkær's estimate (median absolute response of a noise kernel; robust to edges)
- blockiness: luminance jumps on the 8×8 JPEG grid relative to jumps elsewhere
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

WEIGHTS = {
    "sharpness": 0.25,
    "exposure": 0.2,
    "contrast": 0.15,
    "colourfulness": 0.1,
    "noise": 0.2,
    "blockiness": 0.1,
}


def _laplacian(x: torch.Tensor) -> torch.Tensor:
    """3×3 Laplacian (valid region) as shifted slices: cheaper than a 1-channel convolution."""
    centre = x[..., 1:-1, 1:-1]
    return x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:] - 4 * centre


def _second_difference(x: torch.Tensor) -> torch.Tensor:
    """Immerkær's kernel [[1,-2,1],[-2,4,-2],[1,-2,1]] = [1,-2,1] ⊗ [1,-2,1], applied separably."""
    rows = x[..., :, :-2] - 2 * x[..., :, 1:-1] + x[..., :, 2:]
    return rows[..., :-2, :] - 2 * rows[..., 1:-1, :] + rows[..., 2:, :]


def metrics(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image metrics, each a (B,) tensor in 0..1."""
    rgb = images.float() / 255.0
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    luma = (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)
    flat = luma.flatten(1)

    half = F.avg_pool2d(luma, 2)
    energy = _laplacian(half).flatten(1).var(dim=1)
    sharpness = energy / (energy + 5e-4)

    mean = flat.mean(1)
    clipped = ((flat < 0.02) | (flat > 0.98)).float().mean(1)
    exposure = torch.exp(-(((mean - 0.5) / 0.3) ** 2)) * torch.exp(-4 * clipped)

    contrast = (flat.std(1) / 0.22).clamp(0, 1)

    rg, yb = (r - g).flatten(1), (0.5 * (r + g) - b).flatten(1)
    colour = torch.sqrt(rg.var(1) + yb.var(1)) + 0.3 * torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2)
    colourfulness = (colour / 0.35).clamp(0, 1)

    response = _second_difference(luma).abs().flatten(1)
    sigma = response.median(dim=1).values / (0.6745 * 6)
    noise = torch.exp(-sigma / 0.02)

    dx = (luma[..., :, 1:] - luma[..., :, :-1]).abs().mean(dim=(1, 2))  # (B, W-1): mean jump per column
    dy = (luma[..., 1:, :] - luma[..., :-1, :]).abs().mean(dim=(1, 3))  # (B, H-1)
    ratio = torch.stack([_grid_ratio(dx), _grid_ratio(dy)]).mean(0)
    blockiness = torch.exp(-(ratio - 1).clamp(min=0) / 0.6)

    return {
        "sharpness": sharpness,
        "exposure": exposure,
        "contrast": contrast,
        "colourfulness": colourfulness,
        "noise": noise,
        "blockiness": blockiness,
    }


def _grid_ratio(jumps: torch.Tensor) -> torch.Tensor:
    """Mean jump across 8-pixel block boundaries over the mean jump elsewhere (1 = no grid)."""
    index = torch.arange(jumps.shape[1], device=jumps.device)
    on_grid = (index % 8) == 7
    return jumps[:, on_grid].mean(1) / jumps[:, ~on_grid].mean(1).clamp(min=1e-4)


def technical_score(parts: dict[str, torch.Tensor]) -> torch.Tensor:
    """Weighted geometric mean of the metrics, 0..100."""
    total = sum(w * torch.log(parts[name].clamp(min=0.01)) for name, w in WEIGHTS.items())
    return 100 * torch.exp(total / sum(WEIGHTS.values()))


def score_tensor(images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    parts = metrics(images)
    return technical_score(parts), parts


assert math.isclose(sum(WEIGHTS.values()), 1.0)

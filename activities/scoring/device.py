"""One code path for CUDA, MPS and CPU: pick the best device unless the environment says otherwise."""

from __future__ import annotations

import torch


def select_device(override: str | None = None) -> torch.device:
    """`override` (ATELIER_SCORING_DEVICE) wins; else cuda, then mps, then cpu."""
    if override and override != "auto":
        device = torch.device(override)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"ATELIER_SCORING_DEVICE={override} but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")

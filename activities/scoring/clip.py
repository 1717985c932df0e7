"""Optional CLIP image–text score from a local model folder (transformers' CLIP format)."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image


class ClipScorer:
    def __init__(self, path: Path, device: torch.device) -> None:
        from transformers import CLIPModel, CLIPProcessor  # only when a CLIP model is configured

        self.device = device
        self.model = CLIPModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        self.processor = CLIPProcessor.from_pretrained(str(path), local_files_only=True)

    @torch.inference_mode()
    def score(self, images: list[bytes], texts: list[str]) -> list[float]:
        """100 × cosine similarity of each image with the text at the same index, floored at 0."""
        pictures = [Image.open(io.BytesIO(data)).convert("RGB") for data in images]
        inputs = self.processor(text=texts, images=pictures, return_tensors="pt", padding=True, truncation=True)
        output = self.model(**{k: v.to(self.device) for k, v in inputs.items()})
        image = torch.nn.functional.normalize(output.image_embeds, dim=-1)
        text = torch.nn.functional.normalize(output.text_embeds, dim=-1)
        return (100 * (image * text).sum(-1)).clamp(min=0).tolist()

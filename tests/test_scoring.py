"""The scoring queue's models: degradation series, text similarity, batching, parity, devices."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from activities.providers.offline import render
from activities.providers.offline.vocabulary import parse
from activities.scoring.device import select_device
from activities.scoring.images import ImageScorer
from activities.scoring.text import TextEmbedder, default_model_path
from models.image import ImageOptions

BASES = [
    (1, "a lighthouse at sunset, orange and purple sky, blue sea, intricate detail"),
    (2, "a red car in a green forest with a house"),
    (4, "a golden ring with a red ruby"),
]


def well_exposed(seed: int, prompt: str) -> Image.Image:
    """A procedurally generated picture with full-range levels and mid-grey mean brightness."""
    options = ImageOptions(background="opaque", format="png", quality="high")
    picture = Image.open(io.BytesIO(render.render(parse(prompt), options, seed, [], prompt))).convert("RGB")
    picture = ImageOps.autocontrast(picture, cutoff=1)
    mean = np.asarray(picture.convert("L")).mean() / 255
    gamma = np.log(0.5) / np.log(mean)
    return picture.point(lambda v: int(255 * (v / 255) ** gamma))


def encoded(picture: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    out = io.BytesIO()
    picture.save(out, fmt, **kwargs)
    return out.getvalue()


def noisy(picture: Image.Image, sigma: float) -> Image.Image:
    pixels = np.asarray(picture).astype(np.float32) + np.random.default_rng(0).normal(0, sigma, (1024, 1024, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


SERIES = {
    "blur": lambda p, k: encoded(p.filter(ImageFilter.GaussianBlur([0, 1, 2, 4, 8][k]))),
    "noise": lambda p, k: encoded(noisy(p, [0, 5, 10, 20, 40][k])),
    "jpeg": lambda p, k: encoded(p, "JPEG", quality=[95, 70, 45, 25, 10][k]),
    "over-exposure": lambda p, k: encoded(ImageEnhance.Brightness(p).enhance([1, 1.3, 1.6, 2.0, 2.6][k])),
    "under-exposure": lambda p, k: encoded(ImageEnhance.Brightness(p).enhance([1, 0.7, 0.45, 0.25, 0.1][k])),
}


def spearman(values: list[float]) -> float:
    """Rank correlation of the values with their position (1 = rising, -1 = falling)."""
    ranks = np.argsort(np.argsort(values)).astype(float)
    position = np.arange(len(values), dtype=float)
    return float(np.corrcoef(ranks, position)[0, 1])


@pytest.fixture(scope="module")
def scorer() -> ImageScorer:
    return ImageScorer(torch.device("cpu"))


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return TextEmbedder(default_model_path(), torch.device("cpu"))


@pytest.mark.parametrize("kind", SERIES)
def test_technical_score_falls_with_each_degradation(scorer, kind):
    for seed, prompt in BASES:
        base = well_exposed(seed, prompt)
        scores = [score for score, _ in scorer.score([SERIES[kind](base, level) for level in range(5)])]
        assert spearman(scores) <= -0.9 + 1e-9, f"{kind} on base {seed}: {scores}"
        assert scores[0] > scores[-1] + 10


def test_batched_and_per_image_scores_agree(scorer):
    images = [encoded(well_exposed(seed, prompt)) for seed, prompt in BASES] + [
        SERIES["noise"](well_exposed(1, BASES[0][1]), 3)
    ]
    batched = scorer.score(images, batch_size=4)
    single = scorer.score_one_by_one(images)
    for (a, parts_a), (b, parts_b) in zip(batched, single, strict=True):
        assert a == pytest.approx(b, abs=0.05)
        assert parts_a == pytest.approx(parts_b, abs=1e-3)


def test_other_sizes_are_cropped_or_resized(scorer):
    small, wide = encoded(Image.new("RGB", (300, 200), (90, 120, 200))), encoded(Image.new("RGB", (1536, 1024), "red"))
    (score_small, _), (score_wide, parts) = scorer.score([small, wide])
    assert 0 <= score_small <= 100 and 0 <= score_wide <= 100 and parts["contrast"] < 0.05


PARAPHRASES = [
    ("The cat is sleeping on the sofa.", "A kitten naps on the couch."),
    ("The harbour was full of fishing boats at dawn.", "At sunrise the port was crowded with fishing vessels."),
    ("She fixed the old clock in her workshop.", "In her workshop she repaired the antique clock."),
    ("Prices at the market went up again.", "The market got more expensive once more."),
]
UNRELATED = [
    ("The cat is sleeping on the sofa.", "Interest rates were raised by the central bank."),
    ("The harbour was full of fishing boats at dawn.", "He practises the violin every evening."),
    ("She fixed the old clock in her workshop.", "The football match ended in a draw."),
    ("Prices at the market went up again.", "Volcanic ash covered the mountain village."),
]


def test_paraphrases_score_above_unrelated_pairs(embedder):
    para = embedder.similarity([a for a, _ in PARAPHRASES], [b for _, b in PARAPHRASES])
    other = embedder.similarity([a for a, _ in UNRELATED], [b for _, b in UNRELATED])
    assert min(para) > max(other)


def test_near_duplicates_catch_renamed_copies(embedder):
    cast = [
        "Harbour master. Stubborn, warm, witty. Into tide tables, kites, gossip.",
        "Glassblower. Curious, anxious, generous. Into star charts, folk songs.",
        "Night-watch captain. Brave, secretive. Into card games, old maps.",
        "Harbour master. Stubborn, warm, witty. Into tide tables, kites, gossip.",  # the same person renamed
        "Harbourmaster. Warm, stubborn and witty. Into kites, tide tables and gossip.",  # lightly reworded
    ]
    pairs = {(a, b) for a, b, _ in embedder.near_duplicates(cast, threshold=0.9)}
    assert (0, 3) in pairs and (0, 4) in pairs
    assert not {(0, 1), (0, 2), (1, 2)} & pairs


def test_pure_torch_embeddings_match_sentence_transformers(embedder):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    reference = sentence_transformers.SentenceTransformer(str(default_model_path()), device="cpu")
    texts = [a for a, _ in PARAPHRASES] + ["short", "a much longer sentence " * 20]
    expected = reference.encode(texts, normalize_embeddings=True, convert_to_tensor=True)
    assert torch.allclose(embedder.embed(texts), expected, atol=1e-4)


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    best = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert select_device("auto").type == best, "auto picks the best device there is"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")

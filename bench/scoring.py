"""Scoring benchmark, in one run: batched vs one-by-one image scoring at 1024×1024, sentence
embedding throughput, peak memory; on every device present (CPU always, CUDA when available).

    python -m bench.scoring [--images 32]
"""

from __future__ import annotations

import argparse
import io
import platform
import resource
import time

import torch
from PIL import Image, ImageFilter

from activities.providers.offline import render
from activities.providers.offline.vocabulary import parse
from activities.scoring.image_metrics import score_tensor
from activities.scoring.images import ImageScorer, decode
from activities.scoring.text import TextEmbedder, default_model_path
from models.image import ImageOptions

PROMPTS = ["a lighthouse at sunset, orange sky", "a red car in a green forest", "a purple robot and a cat"]


def images(count: int) -> list[bytes]:
    out = []
    for i in range(count):
        prompt = PROMPTS[i % len(PROMPTS)]
        data = render.render(parse(prompt), ImageOptions(background="opaque", format="jpeg"), i, [], prompt)
        picture = Image.open(io.BytesIO(data)).filter(ImageFilter.GaussianBlur(i % 4))
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=60 + i % 35)
        out.append(buffer.getvalue())
    return out


def timed(work, repeat: int = 3) -> float:
    """Best of `repeat` wall times, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        work()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best


def run(device: torch.device, data: list[bytes]) -> None:
    scorer = ImageScorer(device)
    scorer.score(data[:2])  # warm up
    n = len(data)
    batched = timed(lambda: scorer.score(data, batch_size=16))
    default = timed(lambda: scorer.score(data))
    loop = timed(lambda: scorer.score_one_by_one(data))
    pixels = torch.stack([decode(d) for d in data]).to(device)
    with torch.inference_mode():
        metrics_batched = timed(lambda: [score_tensor(pixels[i : i + 16]) for i in range(0, n, 16)])
        metrics_loop = timed(lambda: [score_tensor(pixels[i : i + 1]) for i in range(n)])
    print(f"[{device}] images 1024x1024, decode + metrics: batches of 16 {n / batched:.1f}/s, batches of "
          f"{scorer.batch} (the default here) {n / default:.1f}/s, one by one {n / loop:.1f}/s "
          f"-> batch 16 vs loop {loop / batched:.2f}x, default vs loop {loop / default:.2f}x")  # fmt: skip
    print(f"[{device}] metrics pass only: batches of 16 {n / metrics_batched:.1f}/s, "
          f"one by one {n / metrics_loop:.1f}/s -> {metrics_loop / metrics_batched:.2f}x")  # fmt: skip
    embedder = TextEmbedder(default_model_path(), device)
    sentences = [f"Post {i}: the {PROMPTS[i % 3]} was seen near the harbour again today." for i in range(512)]
    embedder.embed(sentences[:8])
    seconds = timed(lambda: embedder.embed(sentences, batch_size=64), repeat=2)
    print(f"[{device}] sentence embeddings (MiniLM-L6, batch 64): {len(sentences) / seconds:.0f} sentences/s")
    if device.type == "cuda":
        print(f"[{device}] peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    data = images(args.images)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        run(device, data)
    print(f"peak memory (RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()

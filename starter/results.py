"""Turn a finished run's artifact keys into local files and the result JSON users read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from activities.storage import ArtifactStore, load, write_atomic
from models.image import ImageJobResult, Iteration


def feedback_line(it: Iteration) -> str:
    """The evaluator's feedback, with how the iteration's score was made."""
    if it.technical is None:
        return it.feedback
    parts = ", ".join(f"{name} {value:.2f}" for name, value in it.technical_breakdown.items())
    return f"{it.feedback} | score {it.score}: fidelity {it.fidelity}, technical {it.technical:.0f} ({parts})"


async def image_result_json(result: ImageJobResult, store: ArtifactStore, out_dir: Path) -> dict[str, Any]:
    """Copy every iteration's image (checked against its sha256) under `out_dir`; build the contract."""
    paths: dict[int, Path] = {}
    for it in result.iterations:
        path = (out_dir / f"iteration-{it.number:02d}.{it.image.extension}").resolve()
        write_atomic(path, await load(store, it.image))
        paths[it.number] = path
    best = next(it for it in result.iterations if it.number == result.best_iteration)
    best_path = (out_dir / f"best.{best.image.extension}").resolve()
    write_atomic(best_path, paths[best.number].read_bytes())
    payload = {
        "best_image_url": str(best_path),
        "final_score": result.final_score,
        "prompt_history": [it.prompt for it in result.iterations],
        "image_history": [str(paths[it.number]) for it in result.iterations],
        "feedback_history": [feedback_line(it) for it in result.iterations],
        "score_history": [it.score for it in result.iterations],
        "response_ids": [it.response_id for it in result.iterations],
        "workflow_id": result.workflow_id,
        "provider": result.provider,
        "stopped_because": result.stopped_because.value,
    }
    write_atomic(out_dir / "result.json", json.dumps(payload, indent=2).encode())
    return payload

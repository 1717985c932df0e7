"""Turn a finished run's artifact keys into local files and the result JSON users read."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from kit.files import write_atomic
from kit.storage import ArtifactStore, load
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
    best_path = None
    best = next((it for it in result.iterations if it.number == result.best_iteration), None)
    if best is not None:  # none when the provider refused every iteration's picture
        best_path = (out_dir / f"best.{best.image.extension}").resolve()
        write_atomic(best_path, paths[best.number].read_bytes())
    payload = {
        "best_image_url": str(best_path) if best_path else None,
        "final_score": result.final_score,
        "prompt_history": [it.prompt for it in result.iterations],
        "image_history": [str(paths[it.number]) for it in result.iterations],
        "feedback_history": [feedback_line(it) for it in result.iterations],
        "score_history": [it.score for it in result.iterations],
        "response_ids": [it.response_id for it in result.iterations],
        "workflow_id": result.workflow_id,
        "provider": result.provider,
        "stopped_because": result.stopped_because.value,
        "usage": result.usage.model_dump(mode="json"),
        "notes": [f"iteration {it.number}: {it.note}" for it in result.iterations if it.note],
        "refusals": [r.model_dump(mode="json") for r in result.refusals],
        "budget_exhausted": result.budget_exhausted,
        "spend": result.spend.model_dump(mode="json") if result.spend else None,
    }
    write_atomic(out_dir / "result.json", json.dumps(payload, indent=2).encode())
    write_atomic(out_dir / "index.html", iterations_page(result, paths).encode())
    return payload


PAGE_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f1ec;color:#222}
header{padding:1.5rem 2rem;background:#234;color:#fff}header p{opacity:.8;margin:.3rem 0}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:1rem;padding:1rem 2rem}
article{background:#fff;border-radius:10px;padding:.8rem;box-shadow:0 1px 4px #0002}
article.best{outline:3px solid #2a9d5c}article img{width:100%;border-radius:6px;background:#ddd}
.score{font-size:1.6rem;font-weight:700}.muted{color:#666;font-size:.85rem}table{font-size:.85rem}
"""


def iterations_page(result: ImageJobResult, paths: dict[int, Path]) -> str:
    """index.html beside result.json: every iteration side by side, the best one outlined."""
    e = html.escape
    cards = []
    for it in result.iterations:
        rows = "".join(f"<tr><td>{e(k)}</td><td>{v:.2f}</td></tr>" for k, v in it.technical_breakdown.items())
        parts = f"fidelity {it.fidelity}" + (f" · technical {it.technical:.0f}" if it.technical is not None else "")
        human = "".join(f"<p class='muted'>human: {e(h)}</p>" for h in it.human_feedback)
        best = " class='best'" if it.number == result.best_iteration else ""
        cards.append(
            f"<article{best}><img src='{e(paths[it.number].name)}' alt='iteration {it.number}'>"
            f"<p><span class='score'>{it.score}</span> <span class='muted'>iteration {it.number} · {parts}</span></p>"
            f"<p>{e(it.prompt)}</p>{human}<p class='muted'>{e(it.feedback)}</p><table>{rows}</table></article>"
        )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(result.workflow_id)}</title>"
        f"<style>{PAGE_STYLE}</style></head><body><header><h1>{e(result.workflow_id)}</h1>"
        + "".join(f"<p>iteration {r.iteration} refused ({e(r.category)}): {e(r.reason)}</p>" for r in result.refusals)
        + f"<p>best: iteration {result.best_iteration}, score {result.final_score} · stopped because "
        f"{e(result.stopped_because.value)} · provider {e(result.provider)}</p>"
        f"<p>usage: {e(result.usage.summary())}</p></header>"
        f"<main>{''.join(cards)}</main></body></html>"
    )

"""Runs side by side: their best pictures, the models that made them, score per iteration as one chart, cost,
tokens and time, and the settings that differ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starter.studio.run_views import ImageView, RunHead

COLOURS = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700")
WIDTH, HEIGHT, PAD = 480, 220, 32


@dataclass
class Compared:
    runs: list[tuple[RunHead, ImageView | None, str]]  # head, view, colour
    settings: list[tuple[str, list[str], bool]]  # setting, value per run, whether they differ
    lines: list[tuple[str, str, list[tuple[float, float, int]]]]  # run id, colour, points (x, y, score)
    most_iterations: int

    def x_of(self, number: int) -> float:
        span = max(self.most_iterations - 1, 1)
        return PAD + (number - 1) * (WIDTH - 2 * PAD) / span

    @staticmethod
    def y_of(score: float) -> float:
        return HEIGHT - PAD - score * (HEIGHT - 2 * PAD) / 100


def flat(value: Any, prefix: str = "") -> dict[str, str]:
    """A job as setting → shown value (`options.quality` → `high`)."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for name, item in value.items():
            out |= flat(item, f"{prefix}{name}.")
        return out
    if isinstance(value, list):
        return {prefix.rstrip("."): ", ".join(str(v.get("key", v)) if isinstance(v, dict) else str(v) for v in value)}
    return {prefix.rstrip("."): "–" if value is None else str(value)}


def compared(runs: list[tuple[RunHead, ImageView | None]]) -> Compared:
    jobs = [flat(head.job) for head, _ in runs]
    names = sorted({name for job in jobs for name in job})
    settings = []
    for name in names:
        values = [job.get(name, "–") for job in jobs]
        settings.append((name, values, len(set(values)) > 1))
    numbers = [it.number for _, view in runs if view for it in view.iterations]
    numbers += [r.iteration for _, view in runs if view for r in view.refusals]
    most = max(numbers, default=1)  # refused iterations count: the axis is the run's iteration numbers
    found = Compared([(head, view, COLOURS[n]) for n, (head, view) in enumerate(runs)], settings, [], max(most, 1))
    for head, view, colour in found.runs:
        if view is not None:
            points = [(found.x_of(it.number), found.y_of(it.score), it.score) for it in view.iterations]
            found.lines.append((head.id, colour, points))
    return found

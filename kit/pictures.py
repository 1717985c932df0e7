"""How a pipeline's pictures are found, declared once per pipeline (`PipelineSpec.pictures` names one of
`LAYOUTS`): among what its run has stored, each with its kind (an `image.created` event's `kind`), in order; the
one that stands for the run (the Studio's list); and what else the event feed follows in it (an image run's
scored iterations, a world's characters). The run reader and the event feed ask the layout, never the name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kit.world_layout import PICTURE, StoredCharacter, stored_world

Found = list[tuple[str, str]]  # (kind, key) of each picture, in order


def iteration_pictures(keys: Iterable[str]) -> list[str]:
    """An image run's iteration pictures (`runs/<id>/iteration-NN.<ext>`), in order."""
    return sorted(k for k in keys if k.rsplit("/", 1)[-1].startswith("iteration-") and k.endswith(PICTURE))


class Pictures:
    """A layout with no pictures: what every layout answers unless it says otherwise."""

    reads_result = False  # whether `chosen` reads the finished run's result

    def stored(self, run_id: str, keys: Iterable[str]) -> Found:
        """The run's pictures among the keys it has stored (`PipelineSpec.artifacts/<run id>/…`)."""
        return []

    def chosen(self, result: Any) -> str | None:
        """The picture the finished run's result names as its own; None: its last stored picture stands for it."""
        return None

    def scores(self, live: dict[str, Any]) -> list[int]:
        """The scores of its finished iterations, in order, from its live status or its result (as JSON)."""
        return []

    def characters(self, run_id: str, keys: Iterable[str]) -> dict[str, StoredCharacter]:
        """Its characters as stored so far, by username."""
        return {}


class Iterations(Pictures):
    """An image run: a picture per iteration; the best one (else the latest) stands for the run."""

    reads_result = True

    def stored(self, run_id: str, keys: Iterable[str]) -> Found:
        return [("iteration", key) for key in iteration_pictures(keys)]

    def chosen(self, result: Any) -> str | None:
        best = result.best_iteration
        return next((it.image.key for it in result.iterations if it.number == best), None)

    def scores(self, live: dict[str, Any]) -> list[int]:
        if "scores" in live:  # a live status
            return live["scores"] or []
        return [it["score"] for it in live.get("iterations", [])]


class Meme(Pictures):
    """A meme: its finished picture (a cached meme's result names a picture made before)."""

    reads_result = True

    def stored(self, run_id: str, keys: Iterable[str]) -> Found:
        return [("meme", key) for key in sorted(keys) if key.endswith("/meme.png")]

    def chosen(self, result: Any) -> str | None:
        return result.image.key


class World(Pictures):
    """A world (`kit.world_layout`): its background and icon (the icon, once made, stands for it), and its
    characters with their avatars and posts."""

    def stored(self, run_id: str, keys: Iterable[str]) -> Found:
        world = stored_world(run_id, keys)
        return [(kind, key) for kind, key in (("background", world.background), ("icon", world.icon)) if key]

    def characters(self, run_id: str, keys: Iterable[str]) -> dict[str, StoredCharacter]:
        return stored_world(run_id, keys).characters


LAYOUTS: dict[str, Pictures] = {"iterations": Iterations(), "meme": Meme(), "world": World(), "none": Pictures()}

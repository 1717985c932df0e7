"""What an artifact a run made was, found from its key (`runs/<run>/…`, `worlds/<run>/…`), for a rating or a
vote to record: its run (the caller's, or 404 exactly as for none, as `GET /v1/artifacts` decides), the job's
prompt or topic, the model that made it, the evaluator that scored it with that score and the run's pass mark,
and, for an experiment's cell, the experiment, its variant and row. Read from the run's result (or its live
status while it runs), by the layout its pipeline declares (`PipelineSpec.pictures`)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import WorkflowExecutionDescription

from kit.db.ratings import RatedArtifact
from kit.run_reading import RunReader
from kit.storage import run_key
from kit.world_layout import read_or_none, stored_world
from models.experiment import EXPERIMENT_TYPE
from models.image import ImageJob
from models.pipelines import spec_of
from models.world import CharacterManifest
from starter.api.errors import NotFound
from starter.api.experiments import live_grid as experiment_grid
from starter.api.service import Caller, Service, described

# an experiment cell's run (`models.experiment.child_id`); its artifacts' keys hold `_` for the `~`
CELL = re.compile(r"^(?P<experiment>.+)[~_]r(?P<row>\d+)-v(?P<variant>\d+)-k\d+-a\d+$")
DEFAULT_THRESHOLD = ImageJob.model_fields["threshold"].default
MEME_PICTURE = "meme.png"  # what a meme run renders (`activities.meme_render`); its result names the public copy

Found = RatedArtifact | None
Finder = Callable[[RunReader, WorkflowExecutionDescription, dict[str, Any], str], Awaitable[Found]]


def _facts(kind: str, prompt: Any, **made: Any) -> RatedArtifact:
    return RatedArtifact(kind=kind, prompt=" ".join(str(prompt or "").split()), **made)


async def _iteration(reader: RunReader, run: WorkflowExecutionDescription, job: dict[str, Any], key: str) -> Found:
    """An image run's iteration picture: the iteration's model, evaluator and score (what met the threshold
    or not)."""
    done = await reader.result(run) or await reader.status(run)
    it = next((it for it in getattr(done, "iterations", []) if it.image.key == key), None)
    if it is None:
        return None
    threshold = float(job.get("threshold", DEFAULT_THRESHOLD))
    return _facts(
        "iteration", job.get("prompt"), model=it.model, judge=it.eval_model, score=it.score, threshold=threshold
    )


async def _meme(reader: RunReader, run: WorkflowExecutionDescription, job: dict[str, Any], key: str) -> Found:
    """A finished meme's picture as its run rendered it (`runs/<run>/meme.png`; a meme the cache answered
    made none): the model of its scenes, judged by its text model (0–1 scores as 0–100)."""
    result = await reader.result(run)
    if result is None or result.cache == "hit" or key != run_key(run.id, MEME_PICTURE):
        return None
    score, mark = result.score * 100, result.target_score * 100
    return _facts("meme", result.topic, model=result.image_model, judge=result.text_model, score=score, threshold=mark)


async def _world(reader: RunReader, run: WorkflowExecutionDescription, job: dict[str, Any], key: str) -> Found:
    """A world's avatar, post or post picture (made by the models its character's manifest names), or one of
    its own pictures; a world has no judge."""
    world = stored_world(run.id, await reader.store.keys("/".join(key.split("/")[:2])))
    prompt = job.get("prompt")
    if key in (world.background, world.icon):
        return _facts("picture", prompt)
    for character in world.characters.values():
        posts = {k: (n, "post") for n, k in character.posts.items()}
        posts |= {k: (n, "picture") for n, k in character.pictures.items()}
        if key != character.avatar and key not in posts:
            continue
        manifest = (
            await read_or_none(reader.store, character.manifest, CharacterManifest) if character.manifest else None
        )
        if key == character.avatar:
            return _facts("avatar", prompt, model=manifest.avatar_model if manifest else None)
        number, part = posts[key]
        record = next((p for p in manifest.posts if p.number == number), None) if manifest else None
        model = (record.image_model if part == "picture" else record.model) if record else None
        return _facts("post", prompt, model=model)
    return None


FINDERS: dict[str, Finder] = {"iterations": _iteration, "meme": _meme, "world": _world}


async def _run_of(svc: Service, segment: str) -> WorkflowExecutionDescription | None:
    """The run a key's run segment names: the run of that id, else the experiment cell it stands for."""
    found = await described(svc, segment)
    if found is None and (cell := CELL.match(segment)) is not None:
        found = await described(svc, f"{cell['experiment']}~{segment[len(cell['experiment']) + 1 :]}")
    return found


async def variant_names(svc: Service, experiment_id: str) -> list[str]:
    """The experiment's variants' names, in order ([] when it cannot be read)."""
    experiment = await described(svc, experiment_id)
    if experiment is None or experiment.workflow_type != EXPERIMENT_TYPE:
        return []
    grid = await experiment_grid(svc, experiment)
    return grid.variants if grid is not None else []


async def made(svc: Service, caller: Caller, key: str) -> RatedArtifact:
    """What the caller's artifact `key` is (not yet stored); 404 for anyone else's, a key no run made, or one
    its run does not name."""
    missing = NotFound("artifact", key)
    parts = key.split("/")
    if len(parts) < 3 or any(p in ("", ".", "..") for p in parts) or not caller.owns(parts[1]):
        raise missing
    run = await _run_of(svc, parts[1])
    spec = None if run is None else spec_of(run.workflow_type)
    if run is None or spec is None or spec.artifacts != parts[0] or not caller.owns(run.id):
        raise missing
    reader = RunReader(svc.client, svc.store)
    facts = await FINDERS[spec.pictures](reader, run, await reader.job(run), key)
    if facts is None:
        raise missing
    facts.key, facts.run, facts.pipeline = key, run.id, spec.name
    if (cell := CELL.match(run.id)) is not None:
        names = await variant_names(svc, cell["experiment"])
        variant = int(cell["variant"])
        facts.experiment, facts.row = cell["experiment"], int(cell["row"])
        facts.variant = names[variant] if variant < len(names) else None
    return facts

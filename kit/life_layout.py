"""A world's life in the artifact store: its keys and the readers the event feed, the API and the Studio share
(the activities that write it, `activities.life` and `activities.life_memory`, take their keys from here).

    lives/<life>/cast.json                        Cast
    lives/<life>/state/<NNNN>.json                LifeState at the end of tick NNNN (0000: the world's own posts)
    lives/<life>/feeds/<NNNN>.json                Feeds of the tick
    lives/<life>/actions/<NNNN>-<BBB>.json        the actions a batch decided
    lives/<life>/reflections/<NNNN>-<BBB>.json    the reflections a batch wrote
    lives/<life>/memory/<NNNN>-recalled.json      Ranked: the memories each active character recalled
    lives/<life>/pictures/<NNNN>-<username>.<ext> a post's picture (`Post.picture` names it: key and sha256)

A tick is done once its state is stored: its actions files are then the ones applied, and never change."""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from kit.storage import ArtifactStore, artifact_key
from models.artifacts import ArtifactRef
from models.conversation import Passage, Ranked
from models.life import Action, LifeState
from models.life_memory import Reflection

LIFE_PIPELINE = "life"  # the pipeline whose runs are lives (`models.pipelines`)
ACTIONS = TypeAdapter(list[Action])
REFLECTIONS = TypeAdapter(list[Reflection])
LOOK_BACK = 40  # files of reflections or memories a character's page reads at most, newest first


def life_key(life_id: str, *parts: str) -> str:
    """Key of an artifact of one life: `lives/<life>/<part>/...`."""
    return artifact_key("lives", life_id, *parts)


def state_key(life_id: str, tick: int) -> str:
    return life_key(life_id, "state", f"{tick:04d}.json")


def actions_key(life_id: str, tick: int, batch: int) -> str:
    return life_key(life_id, "actions", f"{tick:04d}-{batch:03d}.json")


def picture_key(life_id: str, tick: int, username: str, extension: str) -> str:
    """Key of the picture of a character's post in a tick (one action each a tick: one post)."""
    return life_key(life_id, "pictures", f"{tick:04d}-{username}.{extension}")


def tick_of(key: str) -> int:
    """The tick a per-tick file's key names (`…/0007.json`, `…/0007-002.json`)."""
    return int(key.rsplit("/", 1)[-1][:4])


async def tick_done(store: ArtifactStore, life_id: str, tick: int) -> bool:
    """Whether the tick's actions are applied (its state is stored)."""
    return await store.exists(state_key(life_id, tick))


async def state_at(store: ArtifactStore, life_id: str, tick: int) -> LifeState:
    return LifeState.model_validate_json(await store.read(state_key(life_id, tick)))


async def pictures_of_tick(store: ArtifactStore, life_id: str, tick: int) -> dict[str, str]:
    """The pictures of a done tick's posts: post id → its picture's key."""
    state = await state_at(store, life_id, tick)
    return {p.id: p.picture.key for p in state.posts.values() if p.tick == tick and p.picture is not None}


async def read_state(store: ArtifactStore, ref: ArtifactRef) -> LifeState:
    """The state a status names (its `state_ref`), read by key: a page never fails on a digest."""
    return LifeState.model_validate_json(await store.read(ref.key))


async def tick_actions(store: ArtifactStore, life_id: str, tick: int) -> list[Action]:
    """Every action of one tick, batch by batch in order: one tick's files, never the whole life."""
    mine = life_key(life_id, "actions", f"{tick:04d}-")
    keys = sorted(k for k in await store.keys(life_key(life_id, "actions")) if k.startswith(mine))
    actions: list[Action] = []
    for key in keys:
        actions += ACTIONS.validate_json(await store.read(key))
    return actions


def counts_of(actions: list[Action]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for action in actions:
        counts[action.kind.value] = counts.get(action.kind.value, 0) + 1
    return counts


async def _newest(store: ArtifactStore, prefix: str, suffix: str = "") -> list[str]:
    keys = [k for k in await store.keys(prefix) if k.endswith(suffix)]
    return sorted(keys, reverse=True)[:LOOK_BACK]


async def reflections_of(store: ArtifactStore, life_id: str, username: str, most: int = 3) -> list[Reflection]:
    """A character's latest reflections, newest first (read from the newest batches back)."""
    found: list[Reflection] = []
    for key in await _newest(store, life_key(life_id, "reflections") + "/"):
        try:
            found += [r for r in REFLECTIONS.validate_json(await store.read(key)) if r.username == username]
        except (ValidationError, OSError, KeyError):
            continue
        if len(found) >= most:
            break
    return found[:most]


async def recalled_of(store: ArtifactStore, life_id: str, username: str) -> tuple[int, list[Passage]]:
    """What a character recalled the last time it acted (the tick, and the memories), or (0, [])."""
    for key in await _newest(store, life_key(life_id, "memory") + "/", "-recalled.json"):
        try:
            found = Ranked.model_validate_json(await store.read(key)).found
        except (ValidationError, OSError, KeyError):
            continue
        if username in found:
            return tick_of(key), found[username]
    return 0, []

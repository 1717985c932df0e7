"""Where a world's artifacts are stored, written by `WorldActivities` and read back here as the `models.world`
types: one layout for the writer, the Studio's world page and the event feed.

    worlds/<id>/world.json                                   WorldDescription
    worlds/<id>/background.<ext>, icon.<ext>                 pictures
    worlds/<id>/characters/<username>/profile.json           CharacterDetail
    worlds/<id>/characters/<username>/avatar.<ext>           picture
    worlds/<id>/characters/<username>/posts/<NNN>.json       PostDetail
    worlds/<id>/characters/<username>/posts/<NNN>.<ext>      picture
    worlds/<id>/characters/<username>/character.json         CharacterManifest: the character is finished
    worlds/<id>/manifest.json, index.html                    WorldManifest and its gallery
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from kit.storage import ArtifactStore, world_key

PICTURE = (".png", ".jpeg", ".jpg", ".webp")  # what a stored picture's key ends with
M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("atelier.world_layout")


def character_key(world_id: str, username: str, *parts: str) -> str:
    """Key of one character's artifact: `worlds/<world>/characters/<username>/<part>/...`."""
    return world_key(world_id, "characters", username, *parts)


def post_key(world_id: str, username: str, number: int, extension: str) -> str:
    """Key of a post (`json`) or its picture: `…/characters/<username>/posts/<NNN>.<extension>`."""
    return character_key(world_id, username, "posts", f"{number:03d}.{extension}")


def _picture(keys: Iterable[str], stem: str) -> str | None:
    return next((k for k in keys if k.startswith(stem) and k.endswith(PICTURE)), None)


@dataclass
class StoredCharacter:
    """One character's keys, as stored so far."""

    username: str
    profile: str | None = None
    avatar: str | None = None
    manifest: str | None = None  # written last: the character is finished
    posts: dict[int, str] = field(default_factory=dict)  # number → the post's key
    pictures: dict[int, str] = field(default_factory=dict)  # number → its picture's key


@dataclass
class StoredWorld:
    """A world's keys, as stored so far: it fills in while the world is made."""

    world_id: str
    description: str | None = None
    background: str | None = None
    icon: str | None = None
    manifest: str | None = None
    characters: dict[str, StoredCharacter] = field(default_factory=dict)  # by username, sorted


def stored_world(world_id: str, keys: Iterable[str]) -> StoredWorld:
    """The layout of a listing of `worlds/<world_id>/`."""
    prefix = world_key(world_id) + "/"
    ordered = sorted(keys)
    top = [k for k in ordered if "/" not in k[len(prefix) :]]
    world = StoredWorld(
        world_id,
        description=next((k for k in top if k == prefix + "world.json"), None),
        background=_picture(top, prefix + "background."),
        icon=_picture(top, prefix + "icon."),
        manifest=next((k for k in top if k == prefix + "manifest.json"), None),
    )
    own: dict[str, list[str]] = {}
    for key in ordered:
        parts = key[len(prefix) :].split("/")
        if parts[0] == "characters" and len(parts) > 2:
            own.setdefault(parts[1], []).append(key)
    for username in sorted(own):
        world.characters[username] = _character(world_id, username, own[username])
    return world


def _character(world_id: str, username: str, keys: list[str]) -> StoredCharacter:
    base = character_key(world_id, username) + "/"
    posts = base + "posts/"
    character = StoredCharacter(username, avatar=_picture(keys, base + "avatar."))
    character.profile = base + "profile.json" if base + "profile.json" in keys else None
    character.manifest = base + "character.json" if base + "character.json" in keys else None
    for key in keys:
        if not key.startswith(posts):
            continue
        stem, _, extension = key[len(posts) :].partition(".")
        if extension == "json":
            character.posts[int(stem)] = key
        elif key.endswith(PICTURE):
            character.pictures[int(stem)] = key
    return character


async def read(store: ArtifactStore, key: str, model: type[M]) -> M:
    """One stored artifact as its model (`world.json` as `WorldDescription`, a profile as `CharacterDetail`, …)."""
    return model.model_validate_json(await store.read(key))


async def read_or_none(store: ArtifactStore, key: str, model: type[M]) -> M | None:
    """`read`, or None (with a warning) for a file that does not parse as its model: a reader that goes on past
    it (the event feed) is not stopped by one bad file."""
    try:
        return await read(store, key, model)
    except ValidationError as exc:
        log.warning("skipping %s: not a %s (%s)", key, model.__name__, exc.errors()[0]["msg"])
        return None

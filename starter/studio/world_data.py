"""A world as its page shows it, read from the artifact store as it fills in (`worlds/<id>/…`): the same
reading for a world being made and a finished one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from activities.storage import ArtifactStore
from starter.studio.runs_data import Kept

PICTURE = (".png", ".jpeg", ".jpg", ".webp")
_read: Kept = Kept()  # profiles and posts are written once: read once


@dataclass
class PostView:
    number: int
    content: str = ""
    hashtags: list[str] = field(default_factory=list)
    mood: str = ""
    image_prompt: str = ""
    picture: str | None = None
    refused: str | None = None  # the provider refused its picture: why


@dataclass
class CharacterView:
    username: str
    display_name: str = ""
    role: str = ""
    bio: str = ""
    avatar: str | None = None
    posts: list[PostView] = field(default_factory=list)
    finished: bool = False


@dataclass
class WorldView:
    world_id: str
    name: str = ""
    description: str = ""
    visual_style: str = ""
    background: str | None = None
    icon: str | None = None
    characters: list[CharacterView] = field(default_factory=list)
    manifest: str | None = None

    @property
    def pictures(self) -> int:
        return sum(bool(c.avatar) + sum(bool(p.picture) for p in c.posts) for c in self.characters)


async def _json(store: ArtifactStore, key: str) -> dict[str, Any]:
    if key not in _read:
        _read.keep(key, json.loads(await store.read(key)))
    return _read[key]


def _picture(keys: set[str], stem: str) -> str | None:
    return next((k for k in sorted(keys) if k.startswith(stem) and k.endswith(PICTURE)), None)


async def world_view(store: ArtifactStore, world_id: str) -> WorldView:
    prefix = f"worlds/{world_id}/"
    keys = set(await store.keys(f"worlds/{world_id}"))
    view = WorldView(world_id, background=_picture(keys, prefix + "background."), icon=_picture(keys, prefix + "icon."))
    if prefix + "world.json" in keys:
        world = json.loads(await store.read(prefix + "world.json"))
        view.name, view.description, view.visual_style = world["name"], world["description"], world["visual_style"]
    if prefix + "manifest.json" in keys:
        view.manifest = prefix + "manifest.json"
    users = sorted({k[len(prefix) :].split("/")[1] for k in keys if k.startswith(prefix + "characters/")})
    for username in users:
        view.characters.append(await _character(store, keys, f"{prefix}characters/{username}/", username))
    return view


async def _character(store: ArtifactStore, keys: set[str], base: str, username: str) -> CharacterView:
    character = CharacterView(username, avatar=_picture(keys, base + "avatar."))
    if base + "profile.json" in keys:
        profile = await _json(store, base + "profile.json")
        character.display_name, character.bio = profile.get("display_name", ""), profile.get("bio", "")
    refused: dict[int, str] = {}
    if base + "character.json" in keys:
        manifest = json.loads(await store.read(base + "character.json"))
        character.finished, character.role = True, manifest.get("role_in_world", "")
        refused = {p["number"]: p["image_refused"] for p in manifest.get("posts", []) if p.get("image_refused")}
    numbers = sorted(int(k[len(base) + 6 : -5]) for k in keys if k.startswith(base + "posts/") and k.endswith(".json"))
    for number in numbers:
        post = await _json(store, f"{base}posts/{number:03d}.json")
        character.posts.append(
            PostView(
                number,
                content=post.get("content", ""),
                hashtags=post.get("hashtags", []),
                mood=post.get("mood", ""),
                image_prompt=post.get("image_prompt", ""),
                picture=_picture(keys, f"{base}posts/{number:03d}."),
                refused=refused.get(number),
            )
        )
    return character

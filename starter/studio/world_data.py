"""A world as its page shows it, read from the artifact store as it fills in (`worlds/<id>/…`): the same
reading for a world being made and a finished one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from cachetools import LRUCache

from activities.run_events import PICTURE
from activities.storage import ArtifactStore, world_key


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


_finished: LRUCache[tuple[str, str, str], CharacterView] = LRUCache(4096)  # (world, run, username) → final


def _picture(keys: list[str], stem: str) -> str | None:
    return next((k for k in keys if k.startswith(stem) and k.endswith(PICTURE)), None)


async def world_view(store: ArtifactStore, world_id: str, run: str = "") -> WorldView:
    """The world as stored now; each character read once its manifest is written, and kept from then on."""
    prefix = world_key(world_id) + "/"
    keys = sorted(await store.keys(world_key(world_id)))
    top = [k for k in keys if "/" not in k[len(prefix) :]]
    characters: dict[str, list[str]] = {}
    for key in keys:
        parts = key[len(prefix) :].split("/")
        if parts[0] == "characters" and len(parts) > 2:
            characters.setdefault(parts[1], []).append(key)
    view = WorldView(world_id, background=_picture(top, prefix + "background."), icon=_picture(top, prefix + "icon."))
    if prefix + "world.json" in top:
        world = json.loads(await store.read(prefix + "world.json"))
        view.name, view.description, view.visual_style = world["name"], world["description"], world["visual_style"]
    if prefix + "manifest.json" in top:
        view.manifest = prefix + "manifest.json"
    for username, own in characters.items():
        if (world_id, run, username) not in _finished:
            made = await _character(store, own, f"{prefix}characters/{username}/", username)
            if not made.finished:
                view.characters.append(made)
                continue
            _finished[(world_id, run, username)] = made
        view.characters.append(_finished[(world_id, run, username)])
    return view


async def _character(store: ArtifactStore, keys: list[str], base: str, username: str) -> CharacterView:
    character = CharacterView(username, avatar=_picture(keys, base + "avatar."))
    if base + "profile.json" in keys:
        profile = json.loads(await store.read(base + "profile.json"))
        character.display_name, character.bio = profile.get("display_name", ""), profile.get("bio", "")
    refused: dict[int, str] = {}
    if base + "character.json" in keys:
        manifest = json.loads(await store.read(base + "character.json"))
        character.finished, character.role = True, manifest.get("role_in_world", "")
        refused = {p["number"]: p["image_refused"] for p in manifest.get("posts", []) if p.get("image_refused")}
    pictures = {
        k[len(base) + 6 : len(base) + 9]: k for k in keys if k.startswith(base + "posts/") and k.endswith(PICTURE)
    }
    numbers = sorted(int(k[len(base) + 6 : -5]) for k in keys if k.startswith(base + "posts/") and k.endswith(".json"))
    for number in numbers:
        post = json.loads(await store.read(f"{base}posts/{number:03d}.json"))
        character.posts.append(
            PostView(
                number,
                content=post.get("content", ""),
                hashtags=post.get("hashtags", []),
                mood=post.get("mood", ""),
                image_prompt=post.get("image_prompt", ""),
                picture=pictures.get(f"{number:03d}"),
                refused=refused.get(number),
            )
        )
    return character

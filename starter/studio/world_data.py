"""A world as its page shows it, read from the artifact store as it fills in (`kit.world_layout`): the
same reading for a world being made and a finished one."""

from __future__ import annotations

from dataclasses import dataclass, field

from cachetools import LRUCache

from kit.storage import ArtifactStore, world_key
from kit.world_layout import StoredCharacter, read, stored_world
from models.world import CharacterDetail, CharacterManifest, PostDetail, WorldDescription


@dataclass
class PostView:
    number: int
    content: str = ""
    hashtags: list[str] = field(default_factory=list)
    mood: str = ""
    image_prompt: str = ""
    picture: str | None = None
    refused: str | None = None  # the provider refused its picture: why
    model: str | None = None  # the catalog id of the model that wrote it (known once its character is finished)
    image_model: str | None = None  # and of the one that made its picture


@dataclass
class CharacterView:
    username: str
    display_name: str = ""
    role: str = ""
    bio: str = ""
    avatar: str | None = None
    posts: list[PostView] = field(default_factory=list)
    finished: bool = False
    model: str | None = None  # the catalog id of the model that wrote the profile (from its manifest)
    avatar_model: str | None = None  # and of the one that made the avatar


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


async def world_view(store: ArtifactStore, world_id: str, run: str = "") -> WorldView:
    """The world as stored now; each character read once its manifest is written, and kept from then on."""
    stored = stored_world(world_id, await store.keys(world_key(world_id)))
    view = WorldView(world_id, background=stored.background, icon=stored.icon, manifest=stored.manifest)
    if stored.description is not None:
        world = await read(store, stored.description, WorldDescription)
        view.name, view.description, view.visual_style = world.name, world.description, world.visual_style
    for username, character in stored.characters.items():
        if (world_id, run, username) not in _finished:
            made = await _character(store, character)
            if not made.finished:
                view.characters.append(made)
                continue
            _finished[(world_id, run, username)] = made
        view.characters.append(_finished[(world_id, run, username)])
    return view


async def _character(store: ArtifactStore, stored: StoredCharacter) -> CharacterView:
    character = CharacterView(stored.username, avatar=stored.avatar)
    if stored.profile is not None:
        profile = await read(store, stored.profile, CharacterDetail)
        character.display_name, character.bio = profile.display_name, profile.bio
    refused: dict[int, str] = {}
    made_by: dict[int, tuple[str | None, str | None]] = {}  # post → the models that wrote it and its picture
    if stored.manifest is not None:
        manifest = await read(store, stored.manifest, CharacterManifest)
        character.finished, character.role = True, manifest.role_in_world
        character.model, character.avatar_model = manifest.model, manifest.avatar_model
        refused = {p.number: p.image_refused for p in manifest.posts if p.image_refused}
        made_by = {p.number: (p.model, p.image_model) for p in manifest.posts}
    for number in sorted(stored.posts):
        post = await read(store, stored.posts[number], PostDetail)
        character.posts.append(
            PostView(
                number,
                content=post.content,
                hashtags=post.hashtags,
                mood=post.mood,
                image_prompt=post.image_prompt,
                picture=stored.pictures.get(number),
                refused=refused.get(number),
                model=made_by.get(number, (None, None))[0],
                image_model=made_by.get(number, (None, None))[1],
            )
        )
    return character

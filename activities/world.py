"""Activities of the world pipeline: one class holding the providers and the artifact store (each call goes to
the model its request names).

Every text step stores its JSON under `worlds/<world_id>/...` with a deterministic key (`world_layout`), so a
retried step overwrites its own artifact; images are stored beside them (claim check).
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from activities import gallery
from activities.heartbeat import heartbeating
from activities.prompts import render
from activities.providers import Providers
from activities.providers.base import GeneratedBytes
from activities.purchases import Spool, bought_once
from kit.storage import ArtifactStore, load, world_key
from kit.world_layout import character_key, post_key
from models.artifacts import ArtifactRef
from models.image import ImageOptions
from models.usage import Metered, PaidRequest
from models.world import (
    PORTRAIT,
    WORLD_IMAGE,
    AvatarRequest,
    CharacterBatch,
    CharacterBatchRequest,
    CharacterDetail,
    CharacterDetailRequest,
    CharacterManifest,
    PostBatch,
    PostBatchRequest,
    PostDetail,
    PostDetailRequest,
    PostImageRequest,
    WorldDescription,
    WorldImageRequest,
    WorldManifest,
    WorldManifestRequest,
    WorldPromptRequest,
)

SYSTEM = "You write content for a generated world's social network. Stay consistent with the world."


class Described(BaseModel):
    world: WorldDescription
    artifact: ArtifactRef


class Profiled(BaseModel):
    detail: CharacterDetail
    artifact: ArtifactRef


class Written(BaseModel):
    detail: PostDetail
    artifact: ArtifactRef


def _opaque(options: ImageOptions) -> ImageOptions:
    return options.model_copy(update={"background": "opaque", "format": "jpeg"})


class WorldActivities:
    def __init__(self, providers: Providers, store: ArtifactStore, spool: Spool) -> None:
        self.providers = providers
        self.store = store
        self.spool = spool  # pictures bought but not yet stored

    async def _json(self, key: str, model: BaseModel) -> ArtifactRef:
        return await self.store.put(key, model.model_dump_json(indent=2).encode(), "application/json")

    async def _image(self, key: str, prompt: str, options: ImageOptions, request: PaidRequest) -> Metered[ArtifactRef]:
        provider = self.providers.for_request(request)

        async def buy() -> Metered[GeneratedBytes]:
            async with heartbeating(f"image {key}"):
                return await provider.generate_image(prompt, options, [], None, request.max_cost_usd)

        called, stored = await bought_once(self.spool, self.store, key, buy)
        return called.carrying(stored)

    @activity.defn(name="describe_world")
    async def describe_world(self, request: WorldPromptRequest) -> Metered[Described]:
        async with heartbeating("describing the world"):
            called = await self.providers.for_request(request).structured(
                WorldDescription,
                SYSTEM,
                render("world_description", prompt=request.prompt),
                request,
                request.max_cost_usd,
            )
        world = called.value
        return called.carrying(
            Described(world=world, artifact=await self._json(world_key(request.world_id, "world.json"), world))
        )

    @activity.defn(name="world_image")
    async def world_image(self, request: WorldImageRequest) -> Metered[ArtifactRef]:
        instructions, options = WORLD_IMAGE[request.kind]
        options = _opaque(options)
        prompt = render(
            "world_image", kind_instructions=instructions, visual_style=request.visual_style, world=request.world_text
        )
        key = world_key(request.world_id, f"{request.kind}.{options.format}")
        return await self._image(key, prompt, options, request)

    @activity.defn(name="character_batch")
    async def character_batch(self, request: CharacterBatchRequest) -> Metered[CharacterBatch]:
        if request.previous:
            listed = "\n".join(f"- @{c.username}: {c.display_name}, {c.role_in_world}" for c in request.previous)
            previous = render("previous_characters", characters=listed)
        else:
            previous = render("first_batch_characters")
        prompt = render(
            "character_batch",
            world=request.world_text,
            count=request.count,
            max_posts=request.max_posts,
            previous=previous,
        )
        async with heartbeating(f"character batch {request.batch_index}"):
            return await self.providers.for_request(request).structured(
                CharacterBatch, SYSTEM, prompt, request, request.max_cost_usd
            )

    @activity.defn(name="character_detail")
    async def character_detail(self, request: CharacterDetailRequest) -> Metered[Profiled]:
        seed = request.seed
        prompt = render(
            "character_detail",
            world=request.world_text,
            username=seed.username,
            display_name=seed.display_name,
            role_in_world=seed.role_in_world,
            traits=", ".join(seed.personality_traits),
            interests=", ".join(seed.interests),
        )
        async with heartbeating(f"profile of {seed.username}"):
            called = await self.providers.for_request(request).structured(
                CharacterDetail, SYSTEM, prompt, request, request.max_cost_usd
            )
        detail = called.value.model_copy(update={"username": seed.username})  # the workflow's unique username wins
        key = character_key(request.world_id, seed.username, "profile.json")
        return called.carrying(Profiled(detail=detail, artifact=await self._json(key, detail)))

    @activity.defn(name="character_avatar")
    async def character_avatar(self, request: AvatarRequest) -> Metered[ArtifactRef]:
        prompt = render(
            "character_avatar",
            username=request.username,
            avatar_description=request.avatar_description,
            visual_style=request.visual_style,
        )
        key = character_key(request.world_id, request.username, f"avatar.{PORTRAIT.format}")
        return await self._image(key, prompt, PORTRAIT, request)

    @activity.defn(name="post_batch")
    async def post_batch(self, request: PostBatchRequest) -> Metered[PostBatch]:
        who = request.character
        if request.previous:
            listed = "\n".join(f"{p.number}. {p.topic}: {p.brief}" for p in request.previous)
            previous = render("previous_posts", arc=request.narrative_arc or "", posts=listed)
        else:
            previous = render("first_batch_posts")
        prompt = render(
            "post_batch",
            world=request.world_text,
            display_name=who.display_name,
            username=who.username,
            role_in_world=who.bio,
            personality=who.personality,
            speaking_style=who.speaking_style,
            interests=", ".join(who.interests),
            count=request.count,
            previous=previous,
        )
        async with heartbeating(f"post batch {request.batch_index} of {who.username}"):
            return await self.providers.for_request(request).structured(
                PostBatch, SYSTEM, prompt, request, request.max_cost_usd
            )

    @activity.defn(name="post_detail")
    async def post_detail(self, request: PostDetailRequest) -> Metered[Written]:
        who, idea = request.character, request.idea
        prompt = render(
            "post_detail",
            world=request.world_text,
            number=request.number,
            display_name=who.display_name,
            username=who.username,
            speaking_style=who.speaking_style,
            arc=request.narrative_arc,
            topic=idea.topic,
            brief=idea.brief,
            tone=idea.emotional_tone,
            post_type=idea.post_type,
        )
        async with heartbeating(f"post {request.number} of {who.username}"):
            called = await self.providers.for_request(request).structured(
                PostDetail, SYSTEM, prompt, request, request.max_cost_usd
            )
        key = post_key(request.world_id, who.username, request.number, "json")
        return called.carrying(Written(detail=called.value, artifact=await self._json(key, called.value)))

    @activity.defn(name="post_image")
    async def post_image(self, request: PostImageRequest) -> Metered[ArtifactRef]:
        prompt = render("post_image", image_prompt=request.image_prompt, visual_style=request.visual_style)
        key = post_key(request.world_id, request.username, request.number, PORTRAIT.format)
        return await self._image(key, prompt, PORTRAIT, request)

    @activity.defn(name="write_character_manifest")
    async def write_character_manifest(self, manifest: CharacterManifest) -> ArtifactRef:
        key = character_key(manifest.world_id, manifest.username, "character.json")
        async with heartbeating(f"manifest of {manifest.username}"):
            return await self._json(key, manifest)

    @activity.defn(name="write_world_manifest")
    async def write_world_manifest(self, request: WorldManifestRequest) -> list[ArtifactRef]:
        """manifest.json indexes every artifact; index.html is a gallery that opens from disk."""
        async with heartbeating(f"manifest of world {request.world_id}"):
            return await self._write_world_manifest(request)

    async def _write_world_manifest(self, request: WorldManifestRequest) -> list[ArtifactRef]:
        characters = [CharacterManifest.model_validate_json(await load(self.store, r)) for r in request.characters]
        manifest = WorldManifest(**request.model_dump(exclude={"characters"}), characters=characters)
        manifest_ref = await self._json(world_key(manifest.world_id, "manifest.json"), manifest)
        page = await gallery.render_gallery(manifest, self.store)
        html_ref = await self.store.put(world_key(manifest.world_id, "index.html"), page.encode(), "text/html")
        return [manifest_ref, html_ref]

"""Activities of the meme pipeline: model calls, rendering, publishing and the meme cache.

Model calls go to the guarded provider of the model each request names (its own circuit breakers);
publishing goes through the upload breaker. The cache is content-addressed in the artifact store:
`cache/memes/<sha256 of the request and its models>.json` names the published image by key and sha256.
"""

from __future__ import annotations

import hashlib
import json

from temporalio import activity

from activities.breaker import CircuitBreaker
from activities.heartbeat import heartbeating
from activities.providers import Providers
from activities.providers.base import GeneratedBytes
from activities.purchases import Spool, bought_once
from kit.storage import ArtifactIntegrityError, ArtifactStore, artifact_key, load, run_key
from models.artifacts import ArtifactRef
from models.meme import (
    FORMATS,
    SCENE_OPTIONS,
    CachedMeme,
    CacheKeyRequest,
    CacheLookup,
    FormatChoice,
    FormatRequest,
    JudgeRequest,
    MemeJudgement,
    MemeText,
    Published,
    SceneRequest,
    TextRequest,
)
from models.usage import Metered

WRITER = "You write short, funny, kind memes. Each panel is a few words; the last one lands the joke."
FORMAT_GUIDE = "\n".join(f"- {spec.format.value}: {spec.description}" for spec in FORMATS.values())


def _text_prompt(request: TextRequest) -> str:
    spec = FORMATS[request.format]
    panels = "\n".join(f"{i + 1}. {p.name} (at most {p.max_chars} characters)" for i, p in enumerate(spec.panels))
    prompt = (
        f"Topic: {request.topic}\nStyle: {request.style or 'relatable'}\nFormat: {request.format.value} "
        f"({spec.description})\nWrite exactly {len(spec.panels)} panels, in this order:\n{panels}\n"
        "Also describe in `scene` what the picture should show."
    )
    if request.avoid:
        prompt += f"\nNever use these words: {', '.join(request.avoid)}."
    if request.previous:
        prompt += "\nPrevious version:\n" + "\n".join(f"- {p}" for p in request.previous)
        prompt += f"\nWhat to improve: {request.feedback}"
    return prompt


def cache_entry(key: str) -> str:
    return artifact_key("cache", "memes", f"{key}.json")


class MemeActivities:
    def __init__(
        self, providers: Providers, store: ArtifactStore, spool: Spool, upload: CircuitBreaker, models: str
    ) -> None:
        self.providers = providers
        self.store = store
        self.spool = spool  # pictures bought but not yet stored
        self.upload = upload
        self.models = models  # the worker's provider and default model names: part of the cache key

    @activity.defn(name="choose_meme_format")
    async def choose_format(self, request: FormatRequest) -> Metered[FormatChoice]:
        prompt = f"Topic: {request.topic}\nStyle: {request.style or 'any'}\nPick the format that fits best:\n"
        async with heartbeating("choosing a format"):
            return await self.providers.for_request(request).structured(
                FormatChoice, WRITER, prompt + FORMAT_GUIDE, request, request.max_cost_usd
            )

    @activity.defn(name="write_meme_text")
    async def write_text(self, request: TextRequest) -> Metered[MemeText]:
        async with heartbeating("writing meme text"):
            return await self.providers.for_request(request).structured(
                MemeText, WRITER, _text_prompt(request), request, request.max_cost_usd
            )

    @activity.defn(name="judge_meme_text")
    async def judge_text(self, request: JudgeRequest) -> Metered[MemeJudgement]:
        panels = "\n".join(f"- {p}" for p in request.panels)
        prompt = (
            f"Topic: {request.topic}\nFormat: {request.format.value}\nPanels:\n{panels}\n"
            "Rate humor and clarity from 0 to 1 and say in one sentence how to make it funnier."
        )
        async with heartbeating("judging meme text"):
            return await self.providers.for_request(request).structured(
                MemeJudgement, "You are a tough meme critic.", prompt, request, request.max_cost_usd
            )

    @activity.defn(name="generate_meme_scene")
    async def generate_scene(self, request: SceneRequest) -> Metered[ArtifactRef]:
        options = SCENE_OPTIONS.model_copy(update={"size": request.size})
        key = run_key(request.meme_id, f"scene-{request.index}.png")
        provider = self.providers.for_request(request)

        async def buy() -> Metered[GeneratedBytes]:
            async with heartbeating(f"scene {request.index}"):
                return await provider.generate_image(request.prompt, options, [], None, request.max_cost_usd)

        called, stored = await bought_once(self.spool, self.store, key, buy)
        return called.carrying(stored)

    @activity.defn(name="publish_meme")
    async def publish(self, image: ArtifactRef) -> Published:
        """Upload the finished meme under its content address; return its key (the link, e.g. a presigned URL,
        is minted when the result is read: a credential in history would outlive its use)."""
        data = await load(self.store, image)
        key = artifact_key("memes", f"{image.sha256}.png")
        with self.upload.guard():
            async with heartbeating("uploading"):
                published = await self.store.put(key, data, "image/png")
        return Published(image=published)

    @activity.defn(name="meme_cache_lookup")
    async def cache_lookup(self, request: CacheKeyRequest) -> CacheLookup:
        """The cached meme for an identical request (topic, format, style, models), if it is intact."""
        identity = {"topic": " ".join(request.topic.lower().split()), "format": request.format}
        models = self.providers.identity(self.models, request.models)
        identity |= {"style": " ".join(request.style.lower().split()), "models": models}
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        provider = self.providers.get("text", request.models.text if request.models else None).name
        entry = cache_entry(key)
        if not request.read or not await self.store.exists(entry):
            return CacheLookup(key=key, provider=provider)
        try:
            cached = CachedMeme.model_validate_json(await self.store.read(entry))
            if not await self.store.exists(cached.image.key):
                raise FileNotFoundError(cached.image.key)
            await load(self.store, cached.image)  # the image is unchanged
        except (ArtifactIntegrityError, FileNotFoundError, ValueError) as exc:
            activity.logger.warning("meme cache entry %s is unusable (%s): regenerating", key, exc)
            return CacheLookup(key=key, provider=provider)
        return CacheLookup(key=key, provider=provider, hit=cached)

    @activity.defn(name="meme_cache_save")
    async def cache_save(self, cached: CachedMeme) -> None:
        await self.store.put(cache_entry(cached.key), cached.model_dump_json(indent=2).encode(), "application/json")

    @activity.defn(name="meme_url")
    async def url(self, image: ArtifactRef) -> str | None:
        """Nothing, now: a cached meme's link is minted when the result is read (`meme_link`), not kept in
        history. Kept for the runs whose workflow code still asks for it."""
        return None

    def storage_steps(self) -> list:
        """The steps that only touch the store: no model call."""
        return [self.publish, self.cache_lookup, self.cache_save, self.url]

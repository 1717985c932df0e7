"""Activities of the image loop, as one class holding the provider and the artifact store."""

from __future__ import annotations

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.providers import Provider, ReferenceInput
from activities.providers.usage import metered
from activities.references import BadReference, load_reference
from activities.storage import ArtifactStore, load, run_key
from models.artifacts import ArtifactRef
from models.image import (
    EvaluateImageRequest,
    GeneratedImage,
    GenerateImageRequest,
    ProviderRefinedPrompt,
    RefinePromptRequest,
    ScoredEvaluation,
    StoreReferencesRequest,
)
from models.usage import Metered


class ImageActivities:
    def __init__(self, provider: Provider, store: ArtifactStore, allow_private_urls: bool = False) -> None:
        self.provider = provider
        self.store = store
        self.allow_private_urls = allow_private_urls

    @activity.defn(name="store_references")
    async def store_references(self, request: StoreReferencesRequest) -> list[ArtifactRef]:
        """Fetch and verify each reference image once, and keep it in the artifact store."""
        stored = []
        for index, ref in enumerate(request.references):
            try:
                async with heartbeating(f"fetching reference {index + 1}"):
                    image = await load_reference(ref, self.allow_private_urls)
            except BadReference as exc:
                raise ApplicationError(str(exc), type="BadReference", non_retryable=True) from exc
            except httpx.HTTPError as exc:
                raise ApplicationError(f"reference {ref!r}: {exc}", type="ReferenceUnavailable") from exc
            key = run_key(request.run_id, "refs", f"{index:02d}.{image.extension}")
            stored.append(await self.store.put(key, image.data, image.content_type))
        return stored

    @activity.defn(name="generate_image")
    async def generate_image(self, request: GenerateImageRequest) -> Metered[GeneratedImage]:
        references = [ReferenceInput(await load(self.store, r), r.content_type) for r in request.references]
        async with heartbeating(f"generating image {request.iteration}"):
            result = await self.provider.generate_image(
                request.prompt, request.options, references, request.previous_response_id, request.max_cost_usd
            )
        key = run_key(request.run_id, f"iteration-{request.iteration:02d}.{request.options.format}")
        image = await self.store.put(key, result.data, result.content_type)
        generated = GeneratedImage(
            image=image, response_id=result.response_id, provider=self.provider.name, note=result.note
        )
        return metered(generated)

    @activity.defn(name="evaluate_image")
    async def evaluate_image(self, request: EvaluateImageRequest) -> Metered[ScoredEvaluation]:
        data = await load(self.store, request.image)
        async with heartbeating(f"evaluating image {request.iteration}"):
            verdict = await self.provider.evaluate_image(
                data, request.image.content_type, request.prompt, request.max_cost_usd
            )
        return metered(ScoredEvaluation(score=verdict.score, feedback=verdict.feedback, provider=self.provider.name))

    @activity.defn(name="refine_prompt")
    async def refine_prompt(self, request: RefinePromptRequest) -> Metered[ProviderRefinedPrompt]:
        async with heartbeating("refining prompt"):
            refined = await self.provider.refine_prompt(request)
        return metered(ProviderRefinedPrompt(prompt=refined.prompt, provider=self.provider.name))

"""Activities of the image loop, as one class holding the provider and the artifact store."""

from __future__ import annotations

from temporalio import activity

from activities.heartbeat import heartbeating
from activities.providers import Provider, ReferenceInput
from activities.providers.usage import metered
from activities.storage import ArtifactStore, load, run_key
from models.image import (
    EvaluateImageRequest,
    GeneratedImage,
    GenerateImageRequest,
    ProviderRefinedPrompt,
    RefinePromptRequest,
    ScoredEvaluation,
)
from models.usage import Metered


class ImageActivities:
    def __init__(self, provider: Provider, store: ArtifactStore) -> None:
        self.provider = provider
        self.store = store

    @activity.defn(name="generate_image")
    async def generate_image(self, request: GenerateImageRequest) -> Metered[GeneratedImage]:
        references = [ReferenceInput(await load(self.store, r), r.content_type) for r in request.references]
        async with heartbeating(f"generating image {request.iteration}"):
            result = await self.provider.generate_image(
                request.prompt, request.options, references, request.previous_response_id, request.max_cost_usd
            )
        key = run_key(request.workflow_id, f"iteration-{request.iteration:02d}.{request.options.format}")
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

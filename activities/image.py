"""Activities of the image loop, as one class holding the providers and the artifact store; each call goes to
the model its request names (`Providers.for_request`)."""

from __future__ import annotations

from temporalio import activity

from activities.heartbeat import heartbeating
from activities.providers import Providers, ReferenceInput
from activities.providers.base import GeneratedBytes
from activities.purchases import Spool, bought_once
from kit.storage import ArtifactStore, load, run_key
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
    def __init__(self, providers: Providers, store: ArtifactStore, spool: Spool) -> None:
        self.providers = providers
        self.store = store
        self.spool = spool  # pictures bought but not yet stored

    @activity.defn(name="generate_image")
    async def generate_image(self, request: GenerateImageRequest) -> Metered[GeneratedImage]:
        references = [ReferenceInput(await load(self.store, r), r.content_type) for r in request.references]
        key = run_key(request.workflow_id, f"iteration-{request.iteration:02d}.{request.options.format}")
        provider = self.providers.for_request(request)

        async def buy() -> Metered[GeneratedBytes]:
            async with heartbeating(f"generating image {request.iteration}"):
                return await provider.generate_image(
                    request.prompt, request.options, references, request.previous_response_id, request.max_cost_usd
                )

        called, image = await bought_once(self.spool, self.store, key, buy)
        result = called.value
        generated = GeneratedImage(
            image=image,
            response_id=result.response_id,
            provider=provider.provider_for("generate_image"),
            note=result.note,
        )
        return called.carrying(generated)

    @activity.defn(name="evaluate_image")
    async def evaluate_image(self, request: EvaluateImageRequest) -> Metered[ScoredEvaluation]:
        data = await load(self.store, request.image)
        provider = self.providers.for_request(request)
        async with heartbeating(f"evaluating image {request.iteration}"):
            called = await provider.evaluate_image(
                data, request.image.content_type, request.prompt, request.max_cost_usd
            )
        verdict = called.value
        return called.carrying(
            ScoredEvaluation(
                score=verdict.score, feedback=verdict.feedback, provider=provider.provider_for("evaluate_image")
            )
        )

    @activity.defn(name="refine_prompt")
    async def refine_prompt(self, request: RefinePromptRequest) -> Metered[ProviderRefinedPrompt]:
        provider = self.providers.for_request(request)
        async with heartbeating("refining prompt"):
            called = await provider.refine_prompt(request)
        return called.carrying(
            ProviderRefinedPrompt(prompt=called.value.prompt, provider=provider.provider_for("refine_prompt"))
        )

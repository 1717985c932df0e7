"""Any OpenAI-compatible endpoint (OpenAI, OpenRouter, Ollama, vLLM) through the openai SDK.

The client never retries by itself (`max_retries=0`): Temporal owns retries.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import Any

import openai
from openai import AsyncOpenAI
from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

from activities.errors import invalid_output, is_missing_model, provider_error
from activities.providers import prompts, usage
from activities.providers.base import GeneratedBytes, ReferenceInput, T
from activities.providers.pricing import IMAGE_TOKENS, image_call_bound, input_bound, output_cap, price_of
from activities.providers.usage import CallNotes
from models.image import CONTENT_TYPES, Evaluation, ImageOptions, RefinedPrompt, RefinePromptRequest
from models.settings import Settings


def data_url(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def image_tokens(options: ImageOptions) -> int:
    """The output tokens OpenAI bills for one image (`auto` quality billed as medium)."""
    quality = "medium" if options.quality == "auto" else options.quality
    shape = "square" if options.size in ("1024x1024", "auto") else "wide"
    return IMAGE_TOKENS[(quality, shape)]


def over_budget(what: str, worst_usd: float, max_cost_usd: float) -> ApplicationError:
    return ApplicationError(
        f"{what}: may cost up to ${worst_usd:.4f}, more than the ${max_cost_usd:.4f} the run reserved for it",
        type="BudgetExhausted",
        non_retryable=True,
    )


def note_usage(notes: CallNotes | None, model: str, reported: Any, images: int = 0) -> None:
    """Note the usage a reply reports (chat: prompt/completion tokens; responses and images: input/output)."""
    if reported is None:
        usage.note(notes, model, images=images)
        return
    input_tokens = getattr(reported, "input_tokens", None) or getattr(reported, "prompt_tokens", 0) or 0
    output_tokens = getattr(reported, "output_tokens", None) or getattr(reported, "completion_tokens", 0) or 0
    usage.note(notes, model, int(input_tokens), int(output_tokens), images)


def json_schema_format(schema: type[T]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema(), "strict": False},
    }


class OpenAIProvider:
    name = "openai"

    def __init__(self, settings: Settings) -> None:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
        self.settings = settings
        self.client = AsyncOpenAI(
            api_key=key, base_url=settings.llm_base_url, max_retries=0, timeout=settings.llm_timeout_s
        )
        self._responses_api = True

    def model_for(self, call: str) -> str:
        """The model a call goes to (for traces)."""
        if call == "evaluate_image":
            return self.settings.eval_model
        if call == "generate_image" and not self._responses_api:
            return self.settings.image_model
        return self.settings.llm_model

    async def _structured_call(
        self,
        schema: type[T],
        model: str,
        messages: list[dict[str, Any]],
        max_cost_usd: float | None,
        notes: CallNotes | None,
    ) -> T:
        what = f"{schema.__name__} from {model}"
        limits: dict[str, Any] = {}
        if max_cost_usd is not None:  # a budget: the output is capped so the worst case fits the reservation
            price, tokens_in = price_of(self.settings.prices, model), input_bound(messages)
            if not (cap := output_cap(price, tokens_in, max_cost_usd)):
                raise over_budget(what, price.cost(tokens_in, 64, 0), max_cost_usd)
            limits["max_completion_tokens"] = cap
        try:
            completion = await self.client.chat.completions.create(
                model=model, messages=messages, response_format=json_schema_format(schema), **limits
            )
        except openai.OpenAIError as exc:
            raise provider_error(exc, what) from exc
        note_usage(notes, model, completion.usage)
        if not completion.choices:
            raise invalid_output(what, "no choices in reply")
        content = completion.choices[0].message.content or ""
        try:
            return schema.model_validate_json(content)
        except ValidationError as exc:
            raise invalid_output(what, str(exc).splitlines()[0] + f" in {content[:120]!r}") from exc

    async def structured(
        self,
        schema: type[T],
        instructions: str,
        prompt: str,
        context: BaseModel | None = None,
        max_cost_usd: float | None = None,
        notes: CallNotes | None = None,
    ) -> T:
        messages = [{"role": "system", "content": instructions}, {"role": "user", "content": prompt}]
        return await self._structured_call(schema, self.settings.llm_model, messages, max_cost_usd, notes)

    async def evaluate_image(
        self,
        image: bytes,
        content_type: str,
        prompt: str,
        max_cost_usd: float | None = None,
        notes: CallNotes | None = None,
    ) -> Evaluation:
        messages = [
            {"role": "system", "content": prompts.EVALUATOR},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"Prompt: {prompt}"},
                    {"type": "image_url", "image_url": {"url": data_url(image, content_type)}},
                ],
            },
        ]
        return await self._structured_call(Evaluation, self.settings.eval_model, messages, max_cost_usd, notes)

    async def refine_prompt(self, request: RefinePromptRequest, notes: CallNotes | None = None) -> RefinedPrompt:
        text = prompts.refine_request_text(
            request.original_prompt, request.current_prompt, request.feedback, request.human_feedback
        )
        return await self.structured(
            RefinedPrompt, prompts.PROMPTER, text, max_cost_usd=request.max_cost_usd, notes=notes
        )

    async def generate_image(
        self,
        prompt: str,
        options: ImageOptions,
        references: list[ReferenceInput],
        previous_response_id: str | None,
        max_cost_usd: float | None = None,
        notes: CallNotes | None = None,
    ) -> GeneratedBytes:
        if max_cost_usd is not None:
            sent = 0 if previous_response_id else len(references)
            worst = image_call_bound(self.settings, len(prompt.encode()), sent, options, self._responses_api)
            if worst > max_cost_usd:
                raise over_budget(f"image from {self.settings.image_model}", worst, max_cost_usd)
        if self._responses_api:
            try:
                return await self._generate_with_responses(prompt, options, references, previous_response_id, notes)
            except openai.NotFoundError as exc:
                if is_missing_model(exc):
                    raise ApplicationError(
                        f"image from {self.settings.llm_model}: the endpoint has no model "
                        f"{self.settings.llm_model!r} (HTTP 404): check LLM_MODEL",
                        type="ModelNotFound",
                        non_retryable=True,
                    ) from exc
                # The endpoint has no Responses API route: use images.generate from now on.
                self._responses_api = False
        generated = await self._generate_with_images_api(prompt, options, notes)
        dropped = [
            what
            for what, sent in (("reference images", references), ("the previous image", previous_response_id))
            if sent
        ]
        if dropped:  # images.generate takes a prompt only
            note = f"the endpoint has no Responses API: generated with images.generate without {' and '.join(dropped)}"
            return dataclasses.replace(generated, note=note)
        return generated

    async def _generate_with_responses(
        self,
        prompt: str,
        options: ImageOptions,
        references: list[ReferenceInput],
        previous_response_id: str | None,
        notes: CallNotes | None,
    ) -> GeneratedBytes:
        content: list[dict[str, Any]] = [{"type": "input_text", "text": prompt}]
        if previous_response_id is None:
            content += [{"type": "input_image", "image_url": data_url(r.data, r.content_type)} for r in references]
        tool = {
            "type": "image_generation",
            "quality": options.quality,
            "size": options.size,
            "background": options.background,
            "output_format": options.format,
        }
        kwargs: dict[str, Any] = {}
        if previous_response_id:
            kwargs["previous_response_id"] = previous_response_id
        what = f"image from {self.settings.llm_model}"
        try:
            response = await self.client.responses.create(
                model=self.settings.llm_model,
                input=[{"role": "user", "content": content}],
                tools=[tool],
                **kwargs,
            )
        except openai.NotFoundError:
            raise  # the caller tells a missing route from a missing model
        except openai.OpenAIError as exc:
            raise provider_error(exc, what) from exc
        note_usage(notes, self.settings.llm_model, response.usage)
        for item in response.output or []:
            if getattr(item, "type", None) == "image_generation_call" and getattr(item, "result", None):
                # the image tool's tokens are not in the reply's usage: count them as OpenAI bills them
                usage.note(notes, self.settings.image_model, output_tokens=image_tokens(options), images=1)
                return GeneratedBytes(_b64(item.result, what), CONTENT_TYPES[options.format], response.id)
        raise invalid_output(what, "reply has no image_generation_call with a result")

    async def _generate_with_images_api(
        self, prompt: str, options: ImageOptions, notes: CallNotes | None
    ) -> GeneratedBytes:
        what = f"image from {self.settings.image_model}"
        try:
            result = await self.client.images.generate(
                model=self.settings.image_model,
                prompt=prompt,
                size=options.size,
                quality=options.quality,
                background=options.background,
                output_format=options.format,
                n=1,
            )
        except openai.OpenAIError as exc:
            raise provider_error(exc, what) from exc
        if not result.data or not result.data[0].b64_json:
            raise invalid_output(what, "reply has no b64_json image")
        note_usage(notes, self.settings.image_model, getattr(result, "usage", None), images=1)
        data = _b64(result.data[0].b64_json, what)
        return GeneratedBytes(data, CONTENT_TYPES[options.format], "images-" + hashlib.sha256(data).hexdigest()[:24])


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise invalid_output(what, "image is not valid base64") from exc

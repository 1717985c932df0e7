"""Any OpenAI-compatible endpoint (OpenAI, OpenRouter, Ollama, vLLM, LocalAI) through the openai SDK.

Text, pictures and vision evaluation may each come from their own endpoint (`models/endpoints.py`): from the
settings, or for one catalog model (`models/catalog.py`) the endpoints `activities.providers.Providers` gives
it. One client per distinct server (`ClientPool`, shared by every model on it). The clients never retry by
themselves (`max_retries=0`): Temporal owns retries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Mapping
from typing import Any

import openai
from openai import AsyncOpenAI
from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

from activities.errors import invalid_output, is_missing_model, provider_error
from activities.learned_limits import remember_headers
from activities.providers import prompts
from activities.providers.base import GeneratedBytes, ReferenceInput, T, TextStream
from activities.providers.image_routes import (
    ROUTES,
    ImageRoutes,
    NoPicture,
    PictureAsk,
    data_url,
    is_unsupported,
    note_reply,
)
from activities.providers.streamed_reply import streamed_completion
from activities.providers.structured import json_text, reply_problem, restore_defaults, strict_schema
from activities.providers.usage import CallNotes
from models.endpoints import Endpoint, Kind
from models.image import Evaluation, ImageOptions, RefinedPrompt, RefinePromptRequest
from models.pricing import image_call_bound, input_bound, output_cap, price_of
from models.settings import Settings
from models.usage import Price

log = logging.getLogger(__name__)
KIND_OF_CALL = {"generate_image": "image", "evaluate_image": "eval"}  # every other call is text


def over_budget(what: str, worst_usd: float, max_cost_usd: float) -> ApplicationError:
    return ApplicationError(
        f"{what}: may cost up to ${worst_usd:.4f}, more than the ${max_cost_usd:.4f} the run reserved for it",
        type="BudgetExhausted",
        non_retryable=True,
    )


REASKS = 2  # a reply that does not validate is asked again this often, inside the same attempt
REASK = "That reply is not valid: {problems}. Answer again with only the JSON object, valid against the schema."


def validation_lines(exc: ValidationError) -> str:
    """A validation error in a few words per problem, for the model to fix."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}" for e in exc.errors()[:5])


def client_for(endpoint: Endpoint, settings: Settings) -> AsyncOpenAI:
    """One endpoint's client; every response's headers are kept for the call (limits are learned from them)."""
    key = endpoint.api_key.get_secret_value() if endpoint.api_key else "not-needed"
    http = openai.DefaultAsyncHttpxClient(event_hooks={"response": [remember_headers]})
    return AsyncOpenAI(
        api_key=key, base_url=endpoint.url, max_retries=0, timeout=settings.llm_timeout_s, http_client=http
    )


class ClientPool:
    """One client per distinct server (base URL and key): the models on a server share its connections."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: list[tuple[Endpoint, AsyncOpenAI]] = []

    def client(self, endpoint: Endpoint) -> AsyncOpenAI:
        shared = next((c for e, c in self._clients if e.same_server(endpoint)), None)
        if shared is None:
            shared = client_for(endpoint, self.settings)
            self._clients.append((endpoint, shared))
        return shared


class RouteMissing(Exception):
    """While `IMAGE_API=auto` looks for the route: this endpoint does not make pictures this way."""


def candidate_routes(image: Endpoint, text: Endpoint) -> tuple[str, ...]:
    """The routes `IMAGE_API=auto` tries, most capable first: OpenRouter makes pictures only through chat;
    the Responses route needs the text model on the same server."""
    if image.label == "openrouter":
        return ("chat",)
    return ROUTES if image.same_server(text) else ("images", "chat")


class OpenAIProvider:
    """Calls to OpenAI-compatible endpoints: each kind's (`endpoints`, else the settings'), pictures through
    `image_api` (else IMAGE_API), priced by `prices` (else the settings' table). The Responses route drives the
    image tool with the text endpoint's model."""

    name = "openai"

    def __init__(
        self,
        settings: Settings,
        endpoints: Mapping[Kind, Endpoint] | None = None,
        image_api: str | None = None,
        prices: dict[str, Price] | None = None,
        clients: ClientPool | None = None,
    ) -> None:
        self.settings = settings
        self.endpoints = dict(endpoints or {kind: settings.endpoint(kind) for kind in ("text", "image", "eval")})
        self.prices = settings.prices if prices is None else prices
        pool = clients or ClientPool(settings)
        self.clients: dict[str, AsyncOpenAI] = {kind: pool.client(e) for kind, e in self.endpoints.items()}
        self.client = self.clients["text"]
        image_api = image_api or settings.image_api
        self.image_route: str | None = None if image_api == "auto" else image_api
        self._finding_route = asyncio.Lock()
        self.routes = ImageRoutes(
            self.clients["image"], self.endpoints["image"], self.endpoints["text"].model, settings.allow_private_urls
        )

    def _kind(self, call: str) -> str:
        return KIND_OF_CALL.get(call, "text")

    def model_for(self, call: str) -> str:
        """The model a call goes to (for traces and the call log)."""
        kind = self._kind(call)
        if kind == "image" and self.image_route == "offline":
            return "offline"
        if kind == "image" and self.image_route in (None, "responses"):
            return self.endpoints["text"].model
        return self.endpoints[kind].model

    def provider_for(self, call: str) -> str:
        """Where a call goes, as results and the call log name it (`openai`, `openrouter`, a host:port)."""
        if self._kind(call) == "image" and self.image_route == "offline":
            return "offline"
        return self.endpoints[self._kind(call)].label

    def endpoint_for(self, call: str) -> str | None:
        """A call's endpoint when it is not the text endpoint's server (its own breaker and gate)."""
        kind = self._kind(call)
        if kind == "image" and self.image_route == "offline":
            return "offline"
        endpoint = self.endpoints[kind]
        return None if endpoint.same_server(self.endpoints["text"]) else endpoint.label

    def _strict(self, kind: str) -> bool:
        """Whether the endpoint enforces strict schemas (OpenAI, OpenRouter with `require_parameters`)."""
        if self.settings.strict_output != "auto":
            return self.settings.strict_output == "on"
        return self.endpoints[kind].label in ("openai", "openrouter")

    async def _structured_call(
        self,
        schema: type[T],
        kind: str,
        messages: list[dict[str, Any]],
        max_cost_usd: float | None,
        notes: CallNotes | None,
        stream: TextStream | None = None,
    ) -> T:
        """Structured output, re-asked up to `REASKS` times inside this attempt with the reply and what was wrong
        with it (each call counted and priced; under a budget each re-ask must still fit the call's cap).
        With `stream`, each reply is streamed and `stream.field`'s text sent as it arrives."""
        model = self.endpoints[kind].model
        what = f"{schema.__name__} from {model}"
        original = schema.model_json_schema()
        strict = self._strict(kind)
        wire = strict_schema(original) if strict else original
        extra: dict[str, Any] = {}
        if self.endpoints[kind].label == "openrouter":  # route only to providers that honour the schema
            extra["extra_body"] = {"provider": {"require_parameters": True}}
        messages = list(messages)
        spent = 0.0
        for ask in range(REASKS + 1):
            limits: dict[str, Any] = {}
            if max_cost_usd is not None:  # a budget: the output is capped so the worst case fits what is left
                price, tokens_in = price_of(self.prices, model), input_bound(messages)
                if not (cap := output_cap(price, tokens_in, max_cost_usd - spent)):
                    if ask:
                        raise invalid_output(what, "the reply did not validate and a re-ask no longer fits the budget")
                    raise over_budget(what, price.cost(tokens_in, 64, 0), max_cost_usd)
                limits["max_completion_tokens"] = cap
                spent += price.cost(tokens_in, cap, 0)
            if stream is not None and ask:
                stream.restart()
            request = {
                "model": model,
                "messages": messages,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": schema.__name__, "schema": wire, "strict": strict},
                },
                **limits,
                **extra,
            }
            try:
                if stream is None:
                    completion = await self.clients[kind].chat.completions.create(**request)
                else:
                    chunks = await self.clients[kind].chat.completions.create(
                        **request, stream=True, stream_options={"include_usage": True}
                    )
                    completion = await streamed_completion(chunks, stream, json.dumps(messages), what)
            except openai.OpenAIError as exc:
                raise provider_error(exc, what) from exc
            note_reply(notes, model, completion.usage, new_call=ask > 0)
            if (problem := reply_problem(completion, what, limits.get("max_completion_tokens"))) is not None:
                raise problem
            if not completion.choices:
                raise invalid_output(what, "no choices in reply")
            content = completion.choices[0].message.content or ""
            try:
                data = json.loads(json_text(content))
                return schema.model_validate(restore_defaults(data, original) if strict else data)
            except (ValueError, ValidationError) as exc:
                problems = str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else validation_lines(exc)
                if ask == REASKS:
                    raise invalid_output(what, f"{problems} in {content[:120]!r}") from exc
                messages += [
                    {"role": "assistant", "content": content},
                    {"role": "user", "content": REASK.format(problems=problems)},
                ]
        raise AssertionError("unreachable")

    async def structured(
        self,
        schema: type[T],
        instructions: str,
        prompt: str,
        context: BaseModel | None = None,
        max_cost_usd: float | None = None,
        notes: CallNotes | None = None,
        stream: TextStream | None = None,
    ) -> T:
        messages = [{"role": "system", "content": instructions}, {"role": "user", "content": prompt}]
        return await self._structured_call(schema, "text", messages, max_cost_usd, notes, stream)

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
        return await self._structured_call(Evaluation, "eval", messages, max_cost_usd, notes)

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
        if self.image_route == "offline":  # a text-only endpoint (Ollama, vLLM): the built-in pictures
            from activities.providers.offline import OfflineProvider

            return await OfflineProvider().generate_image(prompt, options, references, previous_response_id)
        if max_cost_usd is not None:
            sent = 0 if previous_response_id else len(references)
            driver = self.endpoints["text"].model if self.image_route in (None, "responses") else None
            image_price = price_of(self.prices, self.endpoints["image"].model)
            driver_price = price_of(self.prices, driver) if driver else None
            worst = image_call_bound(image_price, driver_price, len(prompt.encode()), sent, options)
            if worst > max_cost_usd:
                raise over_budget(f"image from {self.endpoints['image'].model}", worst, max_cost_usd)
        ask = PictureAsk(prompt, options, references, previous_response_id)
        if self.image_route is not None:
            return await self._generate(self.image_route, ask, notes)
        async with self._finding_route:  # the first picture finds the route; calls meanwhile wait for it
            if self.image_route is not None:
                return await self._generate(self.image_route, ask, notes)
            image = self.endpoints["image"]
            tried = candidate_routes(image, self.endpoints["text"])
            for route in tried:
                try:
                    generated = await self._generate(route, ask, notes)
                except RouteMissing:
                    continue
                self.image_route = route
                log.info("IMAGE_API=auto: %s makes pictures through the %s route", image.label, route)
                return generated
        raise ApplicationError(
            f"the image endpoint {image.url} ({image.url_setting}) answered none of the image routes "
            f"({', '.join(tried)}): set IMAGE_API=offline for the built-in pictures, or IMAGE_BASE_URL to an "
            "endpoint that makes pictures",
            type="NoImageRoute",
            non_retryable=True,
        )

    async def _generate(self, route: str, ask: PictureAsk, notes: CallNotes | None) -> GeneratedBytes:
        """One picture through `route`, its failures as Temporal errors; `RouteMissing` while auto probes."""
        image = self.endpoints["image"]
        probing = self.image_route is None
        try:
            return await self._on_route(route, ask, notes)
        except openai.APIStatusError as exc:
            if isinstance(exc, openai.NotFoundError) and is_missing_model(exc):
                setting = "LLM_MODEL" if route == "responses" else "IMAGE_MODEL"
                raise ApplicationError(
                    f"image from {image.label}: the endpoint has no model {self.model_for('generate_image')!r}"
                    f" (HTTP 404): check {setting}",
                    type="ModelNotFound",
                    non_retryable=True,
                ) from exc
            if probing and is_unsupported(exc):
                raise RouteMissing(route) from exc
            raise provider_error(exc, f"image from {image.label}") from exc
        except openai.OpenAIError as exc:
            raise provider_error(exc, f"image from {image.label}") from exc
        except NoPicture as exc:
            if probing:  # a text-only model answering in words: not a picture route
                raise RouteMissing(route) from exc
            raise invalid_output(f"image from {image.label}", str(exc)) from exc

    async def _on_route(self, route: str, ask: PictureAsk, notes: CallNotes | None) -> GeneratedBytes:
        """One picture through one route; what the route cannot carry is said in the result's note."""
        if route == "responses":
            return await self.routes.responses(ask, notes)
        if route == "images":
            generated = await self.routes.images(ask.prompt, ask.options, notes)
            dropped = [
                w
                for w, sent in (("reference images", ask.references), ("the previous image", ask.previous_response_id))
                if sent
            ]
        else:
            generated = await self.routes.chat(ask.prompt, ask.references, notes)
            dropped = ["the previous image"] if ask.previous_response_id else []
        if dropped:
            note = f"the {route} route cannot carry {' and '.join(dropped)}: generated without them"
            return dataclasses.replace(generated, note=note)
        return generated

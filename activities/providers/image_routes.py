"""The ways an OpenAI-compatible endpoint makes pictures, one function per route.

- `responses`: the Responses API with the `image_generation` tool (OpenAI); carries references and the
  previous picture (`previous_response_id`).
- `images`: `POST /images/generations` (OpenAI, LocalAI, Together, DeepInfra); answers `b64_json` or a
  `url`, fetched through the guarded downloader; takes a prompt only.
- `chat`: chat completions with `modalities: ["image", "text"]` (OpenRouter, Gemini-style gateways); the
  picture comes back in `message.images[]` as a data URL; references go in as `image_url` parts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncOpenAI

from activities.errors import invalid_output
from activities.providers import usage
from activities.providers.base import GeneratedBytes, ReferenceInput
from activities.providers.usage import CallNotes
from kit.references import BadReference, fetch_url, origin
from models.endpoints import Endpoint
from models.image import CONTENT_TYPES, ImageOptions
from models.pricing import IMAGE_TOKENS

ROUTES = ("responses", "images", "chat")


@dataclass(frozen=True)
class PictureAsk:
    """What one picture is asked with; a route takes what it can carry."""

    prompt: str
    options: ImageOptions
    references: list[ReferenceInput]
    previous_response_id: str | None


class NoPicture(Exception):
    """A chat reply without a picture: the model (or the endpoint) does not make pictures this way."""


def data_url(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def image_tokens(options: ImageOptions) -> int:
    """The output tokens OpenAI bills for one image (`auto` quality billed as medium)."""
    quality = "medium" if options.quality == "auto" else options.quality
    shape = "square" if options.size in ("1024x1024", "auto") else "wide"
    return IMAGE_TOKENS[(quality, shape)]


def reported_usage(reported: Any) -> tuple[int, int, float | None]:
    """Input and output tokens a reply reports (chat: prompt/completion; responses and images: input/output)
    and the price it reports (OpenRouter's `usage.cost`), if any."""
    if reported is None:
        return 0, 0, None
    fields = reported if isinstance(reported, dict) else {**vars(reported), **(reported.model_extra or {})}
    tokens_in = fields.get("input_tokens") or fields.get("prompt_tokens") or 0
    tokens_out = fields.get("output_tokens") or fields.get("completion_tokens") or 0
    cost = fields.get("cost")
    return int(tokens_in), int(tokens_out), float(cost) if isinstance(cost, int | float) else None


def note_reply(notes: CallNotes | None, model: str, reported: Any, images: int = 0, new_call: bool = False) -> None:
    """Note what a reply reports it used; `new_call`: another request of the same call (a re-ask)."""
    tokens_in, tokens_out, cost = reported_usage(reported)
    usage.note(notes, model, tokens_in, tokens_out, images, cost, new_call)


def b64_bytes(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise invalid_output(what, "image is not valid base64") from exc


def from_data_url(url: str, what: str) -> tuple[bytes, str]:
    """The bytes and content type of a `data:image/...;base64,...` URL."""
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:") or ";base64" not in head:
        raise invalid_output(what, f"picture is not a base64 data URL ({url[:40]!r})")
    return b64_bytes(payload, what), head.removeprefix("data:").split(";", 1)[0] or "image/png"


def is_unsupported(exc: openai.APIStatusError) -> bool:
    """An answer that means "this endpoint has no such route or tool", not "this request is wrong"."""
    if isinstance(exc, openai.NotFoundError):
        return True
    text = str(exc.message).lower()
    return exc.status_code in (400, 405, 501) and ("not supported" in text or "unsupported" in text)


@dataclass
class ImageRoutes:
    """The routes of one image endpoint (`client` talks to it)."""

    client: AsyncOpenAI
    endpoint: Endpoint
    responses_model: str  # the model that calls the image tool on the Responses route
    allow_private_urls: bool

    async def responses(self, ask: PictureAsk, notes: CallNotes | None) -> GeneratedBytes:
        prompt, options, references, previous_response_id = (
            ask.prompt,
            ask.options,
            ask.references,
            ask.previous_response_id,
        )
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
        more: dict[str, Any] = {"previous_response_id": previous_response_id} if previous_response_id else {}
        what = f"image from {self.responses_model}"
        response = await self.client.responses.create(
            model=self.responses_model, input=[{"role": "user", "content": content}], tools=[tool], **more
        )
        note_reply(notes, self.responses_model, response.usage)
        for item in response.output or []:
            if getattr(item, "type", None) == "image_generation_call" and getattr(item, "result", None):
                # the image tool's tokens are not in the reply's usage: count them as OpenAI bills them
                usage.note(notes, self.endpoint.model, output_tokens=image_tokens(options), images=1)
                return GeneratedBytes(b64_bytes(item.result, what), CONTENT_TYPES[options.format], response.id)
        raise invalid_output(what, "reply has no image_generation_call with a result")

    async def images(self, prompt: str, options: ImageOptions, notes: CallNotes | None) -> GeneratedBytes:
        model = self.endpoint.model
        what = f"image from {model}"
        more: dict[str, Any] = {}
        if model.startswith("gpt-image"):  # OpenAI's image models take these; others may refuse them
            more = {"quality": options.quality, "background": options.background, "output_format": options.format}
        elif model.startswith("dall-e"):
            more = {"response_format": "b64_json"}
        result = await self.client.images.generate(model=model, prompt=prompt, size=options.size, n=1, **more)
        if not result.data:
            raise invalid_output(what, "reply has no picture")
        picture = result.data[0]
        note_reply(notes, model, getattr(result, "usage", None), images=1)
        if picture.b64_json:
            data = b64_bytes(picture.b64_json, what)
            content_type = CONTENT_TYPES[options.format] if model.startswith("gpt-image") else sniff(data)
        elif picture.url:
            data, content_type = await self._download(picture.url, what)
        else:
            raise invalid_output(what, "reply has neither b64_json nor url")
        return GeneratedBytes(data, content_type, "images-" + hashlib.sha256(data).hexdigest()[:24])

    async def chat(self, prompt: str, references: list[ReferenceInput], notes: CallNotes | None) -> GeneratedBytes:
        model = self.endpoint.model
        what = f"image from {model}"
        content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
        content += [{"type": "image_url", "image_url": {"url": data_url(r.data, r.content_type)}} for r in references]
        completion = await self.client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": content}],  # type: ignore[list-item]
            extra_body={"modalities": ["image", "text"]},
        )
        note_reply(notes, model, completion.usage, images=1)
        if not completion.choices:
            raise invalid_output(what, "no choices in reply")
        message = completion.choices[0].message
        images = (message.model_extra or {}).get("images") or []
        urls = [(i.get("image_url") or {}).get("url") for i in images if isinstance(i, dict)]
        if not urls or not urls[0]:
            said = (message.content or "")[:120]
            raise NoPicture(f"{what}: reply has no picture in message.images (the model said {said!r})")
        data, content_type = from_data_url(urls[0], what)
        return GeneratedBytes(data, content_type, completion.id or "chat-" + hashlib.sha256(data).hexdigest()[:24])

    async def _download(self, url: str, what: str) -> tuple[bytes, str]:
        """A picture the endpoint answered with a URL: fetched like a reference image (checked address, size
        cap, every redirect re-checked). Only a first hop to the endpoint's own scheme, host and port may be
        private (a LocalAI on the LAN); a redirect from it is checked like any other URL."""
        try:
            picture = await fetch_url(url, allow_private=self.allow_private_urls, trusted=origin(self.endpoint.url))
        except BadReference as exc:
            raise invalid_output(what, str(exc)) from exc
        return picture.data, picture.content_type


def sniff(data: bytes) -> str:
    """The content type of picture bytes, from their signature (PNG when unknown)."""
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"

"""The built-in offline provider: deterministic, no network, labelled `offline` everywhere."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re

from PIL import Image
from pydantic import BaseModel

from activities.providers.base import GeneratedBytes, ReferenceInput, T, TextStream
from activities.providers.offline import (
    conversation_writer,
    judge,
    life_writer,
    meme_writer,
    render,
    world_writer,
    writer,
)
from activities.providers.offline.hands import hand_of
from activities.providers.offline.vocabulary import parse
from activities.providers.usage import CallNotes, estimate_tokens, note
from models.image import CONTENT_TYPES, Evaluation, ImageOptions, RefinedPrompt, RefinePromptRequest

WRITERS = world_writer.WRITERS | meme_writer.WRITERS | conversation_writer.WRITERS | life_writer.WRITERS
_RESPONSE_ID = re.compile(r"^offline-([0-9a-f]{16})-")


def _average_colour(data: bytes) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(data)) as image:
        r, g, b = image.convert("RGB").resize((1, 1)).getpixel((0, 0))
    return r, g, b


class OfflineProvider:
    """Deterministic content with no network; `latency_s` simulates a remote model's delay. `model`: which
    offline model it is (`hands.py`: how its pictures differ); usage is noted under that name."""

    name = "offline"

    def __init__(self, latency_s: float = 0.0, model: str = "offline") -> None:
        self.latency_s = latency_s
        self.model = model
        self.hand = hand_of(model)

    def model_for(self, call: str) -> str:
        """The model a call goes to (for traces and the call log)."""
        return self.model

    async def _wait(self) -> None:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)

    # The offline provider costs nothing ("offline" is priced $0), so every call fits any reservation.

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
        if context is not None and (write := WRITERS.get(schema)) is not None:
            result = write(context)
        else:
            result = writer.SchemaFiller(prompt).build(schema)
        if stream is None:
            await self._wait()
        else:
            await self._write_out(str(getattr(result, stream.field)), stream)
        note(notes, self.model, estimate_tokens(instructions, prompt), estimate_tokens(result.model_dump_json()))
        return result  # type: ignore[return-value]

    async def _write_out(self, text: str, stream: TextStream) -> None:
        """Send `text` word by word across the simulated latency, as a remote model streams its reply:
        the first word after a first-token delay of one word's share."""
        words = re.findall(r"\S+\s*|\s+", text) or [text]
        for word in words:
            if self.latency_s:
                await asyncio.sleep(self.latency_s / len(words))
            stream.send(word)

    async def generate_image(
        self,
        prompt: str,
        options: ImageOptions,
        references: list[ReferenceInput],
        previous_response_id: str | None,
        max_cost_usd: float | None = None,
        notes: CallNotes | None = None,
    ) -> GeneratedBytes:
        await self._wait()
        # The layout seed follows the conversation: a refinement keeps the first image's layout.
        match = _RESPONSE_ID.match(previous_response_id or "")
        seed = int(match.group(1), 16) if match else int(hashlib.sha256(prompt.encode()).hexdigest()[:16], 16)
        extra = [_average_colour(r.data) for r in references]
        data = await asyncio.to_thread(render.render, parse(prompt), options, seed, extra, prompt, self.hand)
        digest = hashlib.sha256(data).hexdigest()[:12]
        note(notes, self.model, estimate_tokens(prompt), images=1)
        return GeneratedBytes(data, CONTENT_TYPES[options.format], f"offline-{seed:016x}-{digest}")

    async def evaluate_image(
        self,
        image: bytes,
        content_type: str,
        prompt: str,
        max_cost_usd: float | None = None,
        notes: CallNotes | None = None,
    ) -> Evaluation:
        await self._wait()
        verdict = await asyncio.to_thread(judge.evaluate, image, prompt)
        note(notes, self.model, estimate_tokens(prompt), estimate_tokens(verdict.model_dump_json()))
        return verdict

    async def refine_prompt(self, request: RefinePromptRequest, notes: CallNotes | None = None) -> RefinedPrompt:
        await self._wait()
        refined = writer.refine(request)
        note(notes, self.model, estimate_tokens(request.model_dump_json()), estimate_tokens(refined.prompt))
        return refined

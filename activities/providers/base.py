"""What every model provider offers the activities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pydantic import BaseModel

from activities.providers.usage import CallNotes
from models.image import Evaluation, ImageOptions, RefinedPrompt, RefinePromptRequest

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class ReferenceInput:
    data: bytes
    content_type: str


def _nothing() -> None:
    pass


@dataclass(frozen=True)
class TextStream:
    """Where a structured call sends one string field of its reply as the model writes it: `send` gets
    each new piece of `field`'s text (the pieces concatenate to the field's final value); `restart` says
    the text starts again (a re-ask inside the call: what was sent so far is to be replaced)."""

    field: str
    send: Callable[[str], None]
    restart: Callable[[], None] = _nothing


@dataclass(frozen=True)
class GeneratedBytes:
    data: bytes
    content_type: str
    response_id: str
    note: str | None = None  # what the provider could not honour (e.g. references on a fallback route)


class Provider(Protocol):
    name: str

    # Every call takes `max_cost_usd`: what the run reserved for it. A provider that bills keeps the
    # call's worst case within it (capping output tokens) or refuses the call; None means no budget.
    # And `notes`: where the provider notes the tokens and images the call used (None: not counted).

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
        """Chat completion whose reply is validated against `schema`.

        `context` is the request the prompt was rendered from; the offline provider writes from it.
        With `stream`, the reply is streamed and `stream.field`'s text is sent as it arrives.
        """
        ...

    async def generate_image(
        self,
        prompt: str,
        options: ImageOptions,
        references: list[ReferenceInput],
        previous_response_id: str | None,
        max_cost_usd: float | None = None,
        notes: CallNotes | None = None,
    ) -> GeneratedBytes: ...

    async def evaluate_image(
        self,
        image: bytes,
        content_type: str,
        prompt: str,
        max_cost_usd: float | None = None,
        notes: CallNotes | None = None,
    ) -> Evaluation: ...

    async def refine_prompt(self, request: RefinePromptRequest, notes: CallNotes | None = None) -> RefinedPrompt:
        """Uses `request.max_cost_usd`."""
        ...

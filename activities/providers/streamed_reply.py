"""A chat completion asked for with `stream: true`, its text passed on as it arrives and the reply put back
together, so the checks a whole reply gets (refusal, filter, cut, error in the body) apply unchanged.

What the providers document: chunks of `choices[].delta` (content, refusal) and a last `finish_reason`;
`stream_options.include_usage` adds a final chunk with `usage` and no choices (OpenAI, OpenRouter, vLLM,
Ollama); OpenRouter sends `: OPENROUTER PROCESSING` comments (the SDK's SSE parser skips them) and an error
during generation as a chunk with `error` (the SDK raises it as `openai.APIError` with that body).
"""

from __future__ import annotations

from typing import Any

import httpx
from openai.types.chat import ChatCompletion, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from temporalio.exceptions import ApplicationError

from activities.providers.base import TextStream
from activities.providers.structured import partial_field
from activities.providers.usage import estimate_tokens


async def streamed_completion(chunks: Any, stream: TextStream, prompt_text: str, what: str) -> ChatCompletion:
    """Read `chunks` (an `AsyncStream[ChatCompletionChunk]`), sending `stream.field`'s new text as it grows;
    the reply as one `ChatCompletion` (usage estimated when the server sent none). A stream that breaks or
    ends before its `finish_reason` is a retryable failure: the reply is incomplete."""
    content, refusal, finish, usage, sent = "", "", None, None, 0
    first: Any = None
    try:
        async for chunk in chunks:
            first = first or chunk
            usage = chunk.usage or usage
            for choice in chunk.choices:
                content += choice.delta.content or ""
                refusal += getattr(choice.delta, "refusal", None) or ""
                finish = choice.finish_reason or finish
            visible = partial_field(content, stream.field)
            if len(visible) > sent:
                stream.send(visible[sent:])
                sent = len(visible)
    except httpx.HTTPError as exc:
        raise ApplicationError(f"{what}: the reply's stream broke ({exc})", type="ProviderStreamCut") from exc
    if finish is None:
        raise ApplicationError(f"{what}: the reply's stream ended before its last chunk", type="ProviderStreamCut")
    if usage is None:
        usage = {"prompt_tokens": estimate_tokens(prompt_text), "completion_tokens": estimate_tokens(content)}
    message = ChatCompletionMessage.model_construct(role="assistant", content=content, refusal=refusal or None)
    choices = [Choice.model_construct(index=0, message=message, finish_reason=finish or "stop")] if first else []
    return ChatCompletion.model_construct(
        id=getattr(first, "id", ""),
        object="chat.completion",
        created=getattr(first, "created", 0),
        model=getattr(first, "model", ""),
        choices=choices,
        usage=usage,
    )

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
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion
from temporalio.exceptions import ApplicationError

from activities.providers.base import TextStream
from activities.providers.structured import partial_field
from activities.providers.usage import estimate_tokens


async def streamed_completion(chunks: Any, stream: TextStream, prompt_text: str, what: str) -> ChatCompletion:
    """Read `chunks` (an `AsyncStream[ChatCompletionChunk]`) into openai's `ChatCompletionStreamState`,
    sending `stream.field`'s new text as it grows; the reply as one `ChatCompletion` (its unparsed snapshot:
    our checks judge a cut or filtered reply, the SDK's parsing would raise on it; usage estimated when the
    server sent none). A stream that breaks or ends before its `finish_reason` is a retryable failure."""
    state, sent, seen = ChatCompletionStreamState(), 0, False
    try:
        async for chunk in chunks:
            state.handle_chunk(chunk)
            seen = True
            choices = state.current_completion_snapshot.choices
            visible = partial_field((choices[0].message.content or "") if choices else "", stream.field)
            if len(visible) > sent:
                stream.send(visible[sent:])
                sent = len(visible)
    except httpx.HTTPError as exc:
        raise ApplicationError(f"{what}: the reply's stream broke ({exc})", type="ProviderStreamCut") from exc
    snapshot = state.current_completion_snapshot if seen else None
    if snapshot is None or not any(choice.finish_reason for choice in snapshot.choices):
        raise ApplicationError(f"{what}: the reply's stream ended before its last chunk", type="ProviderStreamCut")
    reply = ChatCompletion.model_construct(**dict(snapshot))
    if reply.usage is None:
        content = reply.choices[0].message.content or "" if reply.choices else ""
        usage = {"prompt_tokens": estimate_tokens(prompt_text), "completion_tokens": estimate_tokens(content)}
        reply = ChatCompletion.model_construct(**(dict(reply) | {"usage": usage}))
    return reply

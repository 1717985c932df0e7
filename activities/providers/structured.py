"""Structured output that holds across models and endpoints.

- `strict_schema`: the JSON schema in the form strict structured outputs accept (every object closed with
  `additionalProperties: false`, every property required, the optional ones nullable, keywords strict mode
  refuses left to pydantic); `restore_defaults` turns the nulls it allows back into the model's defaults.
- `json_text`: the JSON object in a reply, out of a ```json fence or surrounding prose.
- `partial_field`: a string field's text so far in a JSON reply still being streamed.
- `reply_problem`: what is wrong with a chat reply before its content is read: a refusal, a filtered or
  cut reply, an error sent inside an HTTP 200 body (OpenRouter).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jiter
from temporalio.exceptions import ApplicationError

from activities.errors import classify, refused

# Keywords strict structured outputs accept besides the structural ones; the rest stay pydantic's to check.
STRICT_KEYWORDS = {
    "type", "properties", "required", "additionalProperties", "items", "anyOf", "enum", "const", "$ref", "$defs",
    "description", "title", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "minItems", "maxItems",
}  # fmt: skip
FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of a pydantic JSON schema that strict mode accepts."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: walk(value) for key, value in node.items() if key in STRICT_KEYWORDS}
        if "properties" in node:
            out["properties"] = {name: walk(sub) for name, sub in node["properties"].items()}
        if "$defs" in node:
            out["$defs"] = {name: walk(sub) for name, sub in node["$defs"].items()}
        if out.get("type") == "object" or "properties" in out:
            required = set(node.get("required", []))
            for name, sub in out.get("properties", {}).items():
                if name not in required and not nullable(sub):
                    out["properties"][name] = {"anyOf": [sub, {"type": "null"}]}
            out["required"] = list(out.get("properties", {}))
            out["additionalProperties"] = False
        return out

    return walk(copy.deepcopy(schema))


def nullable(node: dict[str, Any]) -> bool:
    return node.get("type") == "null" or any(nullable(sub) for sub in node.get("anyOf", []))


def restore_defaults(data: Any, schema: dict[str, Any], node: dict[str, Any] | None = None) -> Any:
    """Drop the nulls a strict reply gives optional properties that are not nullable, so their defaults apply."""
    node = schema if node is None else node
    if "$ref" in node:
        node = schema.get("$defs", {}).get(node["$ref"].rsplit("/", 1)[-1], {})
    if isinstance(data, dict) and "properties" in node:
        required = set(node.get("required", []))
        out = {}
        for key, value in data.items():
            sub = node["properties"].get(key, {})
            if value is None and key not in required and not nullable(sub):
                continue
            out[key] = restore_defaults(value, schema, sub)
        return out
    if isinstance(data, list) and "items" in node:
        return [restore_defaults(item, schema, node["items"]) for item in data]
    if "anyOf" in node and data is not None:
        for sub in node["anyOf"]:
            if sub.get("type") != "null":
                return restore_defaults(data, schema, sub)
    return data


def json_text(content: str) -> str:
    """The JSON object in a reply: the reply itself, or what a ```json fence or surrounding prose holds."""
    text = content.strip()
    if text.startswith("{"):
        return text
    if fenced := FENCE.search(text):
        return fenced.group(1).strip()
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else text


def partial_field(text: str, field: str) -> str:
    """The decoded text of the string property `field` so far in `text`, a JSON object cut anywhere
    (a streamed reply): "" until the property starts; an escape cut in half waits for its rest (jiter's
    partial mode, from the object's first brace: a reply may open with a fence)."""
    start = text.find("{")
    if start < 0:
        return ""
    try:
        value = jiter.from_json(text[start:].encode(), partial_mode="trailing-strings")
    except ValueError:
        return ""
    found = value.get(field) if isinstance(value, dict) else None
    return found if isinstance(found, str) else ""


def reply_problem(reply: Any, what: str, cap: int | None) -> ApplicationError | None:
    """Why a chat reply cannot be used, checked before its content: an error inside a 200 body, a refusal,
    a reply the provider filtered, or one cut at the token cap (a re-ask would be cut the same way)."""
    extra = reply.model_extra or {}
    choice = reply.choices[0] if reply.choices else None
    if extra.get("error") or (choice is not None and choice.finish_reason == "error"):
        error = extra.get("error") or (choice.model_extra or {}).get("error") or {}  # type: ignore[union-attr]
        code = error.get("code") if isinstance(error, dict) else None
        status = code if isinstance(code, int) else 502
        message = error.get("message", "error") if isinstance(error, dict) else str(error)
        return classify(status, None if isinstance(code, int) else code, f"{what}: {message}", {}, what)
    if choice is None:
        return None
    refusal = getattr(choice.message, "refusal", None)
    if refusal:
        return refused(what, refusal, "refusal")
    if choice.finish_reason == "content_filter":
        return refused(what, "the provider's content filter stopped the reply", "content_filter")
    if choice.finish_reason == "length":
        limit = f"max_completion_tokens={cap}" if cap else "the model's output limit"
        return ApplicationError(
            f"{what}: the reply was cut at {limit} before the JSON was complete: raise the budget "
            "(--max-cost) or use a model that answers more briefly",
            type="OutputTruncated",
            non_retryable=True,
        )
    return None

"""A local OpenAI-compatible server for tests: chat (JSON schema), Responses image generation,
images.generate, with scriptable faults (status + headers, delays, malformed JSON).

Its `mode` behaves like one provider as that provider documents it:
- `openai`: every route; pictures from the Responses image tool or `/images/generations` (`b64_json`).
- `openrouter` (base `/api/v1`): pictures only from chat completions called with `modalities: ["image",
  "text"]`, in `message.images[].image_url.url` as data URLs; every reply's `usage` carries its price in
  `cost`; the Responses image tool is refused with 400; `/images/generations` does not exist (404).
- `ollama`: chat with JSON-schema output and image inputs; no picture route (404, `404 page not found`).
- `vllm`: chat with JSON-schema output (guided decoding); no picture route (FastAPI's 404 `{"detail": …}`).
- `localai`: chat, and `/images/generations` answering with a `url` the server serves; no Responses route.

Chat completions asked with `stream: true` answer as Server-Sent Events the way the APIs document them:
`chat.completion.chunk`s (a role chunk, content or refusal in pieces spread over the reply's delay, a last
chunk with `finish_reason`), a usage chunk with empty `choices` when `stream_options.include_usage` is set
(OpenRouter: always), then `data: [DONE]`. OpenRouter mode also sends `: OPENROUTER PROCESSING` comments, and
an error during generation as a chunk with `error` and finish_reason `error`; errors before the first
chunk are ordinary HTTP errors. `cut_stream` drops the connection part-way through a reply.

Run it by hand with `python -m tests.fake_openai --port 8099`.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image


@dataclass
class Fault:
    """What to do instead of (or before) a normal reply."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    delay: float = 0.0
    malformed: bool = False
    content: str | None = None  # a chat reply with exactly this content
    finish_reason: str = "stop"  # with `content`: e.g. "length" (cut) or "content_filter"
    refusal: str | None = None  # a chat reply whose message refuses (OpenAI's `message.refusal`)


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    at: float
    faulted: bool = False
    limited: bool = False  # answered 429 by the rate limit
    answered: float | None = None  # when its whole reply was written (None: never, e.g. held, then cut off)


class Bucket:
    """A provider's rate limit for one kind of request: `per_minute` refilled continuously, at most
    `burst` at once. Thread-safe callers hold the server's lock."""

    def __init__(self, per_minute: float, burst: int, clock=time.monotonic, count_refused: bool = False) -> None:
        self.count_refused = count_refused  # OpenAI: unsuccessful requests count against the limit too
        self.rate = per_minute / 60
        self.per_minute = per_minute
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.at = clock()

    def take(self) -> float:
        """0 when the request may go, else the seconds until it could."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        wait = (1 - self.tokens) / self.rate
        if self.count_refused:
            self.tokens -= 1
        return wait

    def headers(self) -> dict[str, str]:
        """The x-ratelimit-* headers a hosted provider sends on every response."""
        reset = max(0.0, (1 - self.tokens) / self.rate) if self.tokens < 1 else 0.0
        return {
            "x-ratelimit-limit-requests": str(int(self.per_minute)),
            "x-ratelimit-remaining-requests": str(max(0, int(self.tokens))),
            "x-ratelimit-reset-requests": f"{reset:.3f}s",
        }

    def too_many(self, wait_s: float, kind: str) -> Fault:
        """The 429 hosted providers send: retry-after headers, x-ratelimit-*, an OpenAI error body."""
        headers = {
            "retry-after": str(max(1, round(wait_s + 0.5))),
            "retry-after-ms": str(int(wait_s * 1000) + 1),
            "x-ratelimit-limit-requests": str(int(self.per_minute)),
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{wait_s:.3f}s",
        }
        message = f"Rate limit reached for {kind} requests per min (RPM): Limit {int(self.per_minute)}"
        body = {"error": {"message": message, "type": "requests", "code": "rate_limit_exceeded", "param": None}}
        return Fault(status=429, headers=headers, body=body)


# The token usage every reply reports, so tests can check what runs count and cost.
CHAT_USAGE = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
RESPONSES_USAGE = {
    "input_tokens": 50,
    "output_tokens": 10,
    "total_tokens": 60,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens_details": {"reasoning_tokens": 0},
}
IMAGES_USAGE = {
    "input_tokens": 40,
    "output_tokens": 272,
    "total_tokens": 312,
    "input_tokens_details": {"text_tokens": 40, "image_tokens": 0},
}


def png(index: int, size: int = 64, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), ((index * 70) % 256, 120, 200)).save(out, fmt)
    return out.getvalue()


def instance(schema: dict[str, Any], defs: dict[str, Any], index: int, path: str = "") -> Any:
    """A value valid for a JSON schema (what pydantic's model_json_schema produces)."""
    if "$ref" in schema:
        return instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, index, path)
    if "anyOf" in schema:
        return instance(next(s for s in schema["anyOf"] if s.get("type") != "null"), defs, index, path)
    if "enum" in schema:
        return schema["enum"][index % len(schema["enum"])]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "string")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: instance(sub, defs, index, f"{path}.{name}") for name, sub in props.items()}
    if kind == "array":
        low, high = schema.get("minItems", 1), schema.get("maxItems", 3)
        count = max(low, min(high, 2))
        return [instance(schema.get("items", {}), defs, index + i, f"{path}[{i}]") for i in range(count)]
    if kind in ("integer", "number"):
        low, high = schema.get("minimum", 0), schema.get("maximum", 100)
        return low + (index % (high - low + 1))
    if kind == "boolean":
        return index % 2 == 0
    text = f"{path.rsplit('.', 1)[-1] or 'text'} {index}"
    return text[: schema.get("maxLength", len(text))].ljust(schema.get("minLength", 0), "x")


def as_asked(value: dict[str, Any], schema: dict[str, Any], prompt: str, index: int) -> dict[str, Any]:
    """Give a batch as many items as the prompt asks for ("Create 5 …", "Plan 3 …"), and characters as
    many posts as allowed, so worlds made against this server have the requested size."""
    wanted = re.search(r"\b(?:Create|Plan) (\d+) ", prompt)
    most_posts = re.search(r"number of posts between 1 and (\d+)", prompt)
    for name, sub in schema.get("properties", {}).items():
        if not wanted or sub.get("type") != "array" or not isinstance(value.get(name), list):
            continue
        items = [instance(sub.get("items", {}), schema.get("$defs", {}), index + i) for i in range(int(wanted[1]))]
        for i, item in enumerate(items):
            if isinstance(item, dict):
                item.update({k: f"{v} {index}-{i}" for k, v in item.items() if k == "username"})
                if most_posts and "posts_count" in item:
                    item["posts_count"] = int(most_posts[1])
        value[name] = items
    return value


LIFE_SCHEMAS = ("Decisions", "Reflections")  # a world's life: one answer per character the prompt lists
CHARACTER = re.compile(r"^@(\S+) \(", re.M)  # `@username (Display name): …` opens a character's block
FEED_ITEM = re.compile(r"^  \[([^\]]+)\] @(\S+):", re.M)  # `  [post id] @author: text` in its feed


def life_answer(name: str, prompt: str, index: int) -> dict[str, Any]:
    """A life's structured answer, as a model following its prompt gives it: for `Decisions`, each character
    replies to the first post of its feed (naming its author), or posts when its feed is empty; for
    `Reflections`, a line each. Every field of the schema is present (strict structured output)."""
    blocks = [(m.group(1), prompt[m.end() : nxt.start() if nxt else len(prompt)]) for m, nxt in _pairs(prompt)]
    if name == "Reflections":
        notes = [{"username": who, "text": f"Reflection {index} of @{who}."} for who, _ in blocks]
        return {"reflections": notes}
    actions = []
    for who, block in blocks:
        first = FEED_ITEM.search(block)
        if first:
            text, kind, post = f"@{first.group(2)} fake reply {index}", "reply", first.group(1)
        else:
            text, kind, post = f"fake post {index} by @{who}", "post", None
        actions.append({"username": who, "kind": kind, "text": text, "post": post, "target": None})
    return {"actions": actions}


def _pairs(prompt: str) -> list[tuple[re.Match[str], re.Match[str] | None]]:
    found = list(CHARACTER.finditer(prompt))
    return list(zip(found, [*found[1:], None], strict=True))


def error_body(message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


MODES = ("openai", "openrouter", "ollama", "vllm", "localai")
OPENROUTER_TEXT_COST = 0.00042  # what the openrouter mode reports in usage.cost for a chat
OPENROUTER_IMAGE_COST = 0.0387  # and for a picture


class FakeOpenAI:
    def __init__(self, mode: str = "openai", api_key: str | None = None) -> None:
        assert mode in MODES, mode
        self.mode = mode
        self.api_key = api_key  # when set, requests with another bearer key get 401
        self.pictures: dict[str, bytes] = {}  # served at /generated-images/<name> (localai)
        self.picture_redirect: str | None = None  # when set, /generated-images/* answers 302 to it
        self.refuse_text: str | None = None  # picture prompts containing it are refused like `[refuse]` ones
        self.fail_text: str | None = None  # any request whose body contains it answers 400 (it fails for good)
        self.hold_texts: tuple[str, ...] = ()  # requests whose body contains them all wait for `release()`
        self._released = threading.Event()
        self.requests: list[Recorded] = []
        self.faults: dict[str, deque[Fault]] = {}
        self.scores: deque[int] = deque()
        self.delays: dict[str, float] = {}
        self.responses_api = True
        self.fault_rate = 0.0
        self.fault_timeout_s = 2.0
        self.buckets: dict[str, Bucket] = {}  # "text" / "image" → the account's rate limit
        self.limit_headers = False
        self.cuts: dict[str, deque[int]] = {}  # JSON schema name → streamed replies to cut after n chunks
        self._random = random.Random(0)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # --- scripting -------------------------------------------------------------------------------
    def fail(self, route: str, *faults: Fault) -> None:
        """Queue faults for a route ('chat', 'responses', 'images'), used one per request."""
        self.faults.setdefault(route, deque()).extend(faults)

    def cut_stream(self, schema_name: str, after_chunks: int) -> None:
        """The next streamed reply for this JSON schema stops after `after_chunks` chunks: the connection
        closes with no last chunk and no `[DONE]` (a dropped stream)."""
        self.cuts.setdefault(schema_name, deque()).append(after_chunks)

    def random_faults(self, rate: float, seed: int = 0, timeout_s: float = 2.0) -> None:
        """From now on, fail this share of requests with 429 (Retry-After), 500, a stall or bad JSON."""
        self.fault_rate, self._random, self.fault_timeout_s = rate, random.Random(seed), timeout_s

    def _random_fault(self, route: str) -> Fault:
        if self._random.random() >= self.fault_rate:
            return Fault()
        kinds = ["429", "500", "timeout"] + (["malformed"] if route == "chat" else [])
        kind = self._random.choice(kinds)
        if kind == "429":
            return Fault(status=429, headers={"retry-after": "1"}, body=error_body("Rate limit reached", "rate_limit"))
        if kind == "500":
            return Fault(status=500, body=error_body("The server had an error"))
        if kind == "timeout":
            return Fault(delay=self.fault_timeout_s)
        return Fault(malformed=True)

    def rate_limit(
        self, text_per_minute: float = 0, images_per_minute: float = 0, burst_s: float = 6.0, hosted: bool = False
    ) -> None:
        """Enforce account limits like a hosted provider: over them, HTTP 429 (chat counts as text;
        Responses and Images calls count as images). `burst_s` worth of requests may come at once. `hosted`:
        as OpenAI documents it, refused requests count against the limit too and every response carries
        x-ratelimit-* headers."""
        self.limit_headers = hosted
        for kind, per_minute in (("text", text_per_minute), ("image", images_per_minute)):
            if per_minute:
                self.buckets[kind] = Bucket(per_minute, max(1, round(per_minute / 60 * burst_s)), count_refused=hosted)

    def rate_limit_models(
        self, per_minute: dict[str, float], burst_s: float = 6.0, count_refused: bool = False
    ) -> None:
        """Limits per model, as OpenAI keeps them: each model its own requests per minute (over it, HTTP 429) and
        every response carrying that model's x-ratelimit-* headers (`count_refused`: refused requests count)."""
        self.limit_headers = True
        for model, rpm in per_minute.items():
            bucket = Bucket(rpm, max(1, round(rpm / 60 * burst_s)), count_refused=count_refused)
            self.buckets[f"model:{model}"] = bucket

    def limited(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.limited]

    def hold(self, *texts: str) -> None:
        """From now on, requests whose body (as JSON) contains every one of `texts` are received (recorded) but
        not answered until `release()`: calls in flight, for as long as a test needs (at most a minute)."""
        self._released.clear()
        self.hold_texts = texts

    def release(self) -> None:
        """The held requests are answered (to whoever still listens); new ones are no longer held."""
        self.hold_texts = ()
        self._released.set()

    def script_scores(self, *scores: int) -> None:
        self.scores.extend(scores)

    def calls(self, route: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith(ROUTES[route])]

    def generation_prompts(self) -> list[str]:
        return [r.body["input"][0]["content"][0]["text"] for r in self.calls("responses")]

    def evaluated_prompts(self) -> list[str]:
        prompts = []
        for r in self.calls("chat"):
            if r.body.get("response_format", {}).get("json_schema", {}).get("name") == "Evaluation":
                prompts.append(r.body["messages"][1]["content"][0]["text"].removeprefix("Prompt: "))
        return prompts

    # --- replies ---------------------------------------------------------------------------------
    def refusal_for(self, route: str) -> tuple[int, Any] | None:
        """What the mode's provider answers on a route it does not have (status, body)."""
        if self.mode == "openrouter" and route == "responses":
            return 400, {"error": {"code": 400, "message": "Tool type image_generation is not supported"}}
        if self.mode == "openrouter" and route == "images":
            return 404, {"error": {"code": 404, "message": "Not Found"}}
        if (
            self.mode in ("ollama", "localai")
            and route in ("responses", "images")
            and not (self.mode == "localai" and route == "images")
        ):
            return 404, "404 page not found"
        return None

    def safety_refusal(self, route: str, body: dict[str, Any]) -> tuple[int, Any] | None:
        """A picture whose prompt is marked `[refuse]` (or `[refuse-always]`) is refused the way the mode's
        provider refuses: OpenAI with 400 `moderation_blocked`, OpenRouter with 403 and `metadata.reasons`."""
        if route == "responses":
            prompt = body["input"][0]["content"][0]["text"]
        elif route == "images":
            prompt = body.get("prompt", "")
        elif route == "chat" and "image" in (body.get("modalities") or []):
            prompt = body["messages"][0]["content"][0]["text"]
        else:
            return None
        if "[refuse" not in prompt and not (self.refuse_text and self.refuse_text in prompt):
            return None
        if self.mode == "openrouter":
            reasons = {"code": 403, "message": "Input was flagged", "metadata": {"reasons": ["violence"]}}
            return 403, {"error": reasons}
        message = "Your request was rejected by the safety system. safety_violations=[violence]."
        error = {"message": message, "type": "image_generation_user_error", "param": None, "code": "moderation_blocked"}
        return 400, {"error": error}

    def reply(self, route: str, body: dict[str, Any], index: int) -> dict[str, Any]:
        if route == "chat" and self.mode == "openrouter" and "image" in (body.get("modalities") or []):
            picture = base64.b64encode(png(index)).decode()
            reply = self.chat_envelope(body, index, "Here is the picture you asked for.")
            reply["choices"][0]["message"]["images"] = [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{picture}"}}
            ]
            reply["usage"] = {"prompt_tokens": 30, "completion_tokens": 1290, "total_tokens": 1320}
            reply["usage"]["cost"] = OPENROUTER_IMAGE_COST
            return reply
        if route == "chat":
            reply = self._chat(body, index)
            if self.mode == "openrouter":
                reply["usage"] = {**CHAT_USAGE, "cost": OPENROUTER_TEXT_COST}
            return reply
        if route == "images" and self.mode == "localai":
            name = f"{index}.png"
            self.pictures[name] = png(index)
            return {"created": 0, "data": [{"url": f"{self.url.rsplit('/v1', 1)[0]}/generated-images/{name}"}]}
        if route == "responses":
            return {
                "id": f"resp_{index}",
                "object": "response",
                "created_at": 0,
                "status": "completed",
                "model": body.get("model", "fake"),
                "output": [
                    {
                        "type": "image_generation_call",
                        "id": f"ig_{index}",
                        "status": "completed",
                        "result": base64.b64encode(png(index, fmt=_format(body))).decode(),
                    }
                ],
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "usage": RESPONSES_USAGE,
            }
        image = png(index, fmt=body.get("output_format", "png").upper())
        return {"created": 0, "data": [{"b64_json": base64.b64encode(image).decode()}], "usage": IMAGES_USAGE}

    def _chat(self, body: dict[str, Any], index: int) -> dict[str, Any]:
        name = body.get("response_format", {}).get("json_schema", {}).get("name")
        if name == "Evaluation":
            with self._lock:
                score = self.scores.popleft() if self.scores else 50
            content = json.dumps({"score": score, "feedback": f"fake feedback {index}: scored {score}"})
        elif name == "RefinedPrompt":
            text = body["messages"][-1]["content"]
            current = re.search(r"Current prompt: (.*)", text)
            prompt = current.group(1) if current else "prompt"
            if "safety system refused" in text:  # a rewrite within policy drops what was refused
                prompt = prompt.replace("[refuse] ", "").replace("[refuse]", "")
            content = json.dumps({"prompt": f"{prompt} +r{index}"})
        elif name in LIFE_SCHEMAS:
            content = json.dumps(life_answer(name, str(body["messages"][-1]["content"]), index))
        else:
            schema = body.get("response_format", {}).get("json_schema", {}).get("schema", {})
            value = instance(schema, schema.get("$defs", {}), index)
            content = json.dumps(as_asked(value, schema, str(body["messages"][-1]["content"]), index))
        return self.chat_envelope(body, index, content)

    @staticmethod
    def chat_envelope(body: dict[str, Any], index: int, content: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{index}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": CHAT_USAGE,
        }

    def chunks(self, reply: dict[str, Any], body: dict[str, Any], error: dict[str, Any] | None = None) -> list[dict]:
        """A chat reply as the `chat.completion.chunk`s a streaming API sends."""
        head = {k: reply[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
        choice, message = reply["choices"][0], reply["choices"][0]["message"]
        field = "refusal" if message.get("refusal") else "content"
        text = message.get(field) or ""
        pieces = [text[i : i + 8] for i in range(0, len(text), 8)]
        out = [head | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
        out += [head | {"choices": [{"index": 0, "delta": {field: p}, "finish_reason": None}]} for p in pieces]
        if error is not None:  # OpenRouter: an error during generation ends the stream as a chunk
            err = error.get("error", error)
            return [
                *out,
                head | {"error": err, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]},
            ]
        out.append(head | {"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]})
        if (body.get("stream_options") or {}).get("include_usage") or self.mode == "openrouter":
            out.append(head | {"choices": [], "usage": reply.get("usage", CHAT_USAGE)})
        return out

    # --- server ----------------------------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _refused_key(self) -> bool:
                if fake.api_key and self.headers.get("authorization") != f"Bearer {fake.api_key}":
                    self._send(401, error_body("Incorrect API key provided", "invalid_api_key"))
                    return True
                return False

            def do_GET(self) -> None:
                if self.path.endswith("/models"):
                    if not self._refused_key():
                        self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
                    return
                name = self.path.rsplit("/", 1)[-1]
                if "/generated-images/" in self.path and fake.picture_redirect:
                    self.send_response(302)
                    self.send_header("location", fake.picture_redirect)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                if "/generated-images/" in self.path and name in fake.pictures:
                    data = fake.pictures[name]
                    self.send_response(200)
                    self.send_header("content-type", "image/png")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self._send(404, error_body(f"no route {self.path}", "not_found"))

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                route = next((r for r, suffix in ROUTES.items() if self.path.endswith(suffix)), None)
                with fake._lock:
                    queue = fake.faults.get(route or "")
                    fault = queue.popleft() if queue else fake._random_fault(route or "")
                    bucket = fake.buckets.get(f"model:{body.get('model')}") or fake.buckets.get(
                        "text" if route == "chat" else "image"
                    )
                    wait = bucket.take() if bucket and route else 0.0
                    if wait:
                        fault = bucket.too_many(wait, "text" if route == "chat" else "image")  # type: ignore[union-attr]
                    limit_headers = bucket.headers() if bucket and fake.limit_headers else {}
                    faulted = fault.status != 200 or fault.malformed or fault.delay >= fake.fault_timeout_s
                    self.record = Recorded(self.path, body, time.monotonic(), faulted, limited=wait > 0)
                    fake.requests.append(self.record)
                    index = len(fake.requests)
                if self._refused_key():
                    return None
                if route is None or (route == "responses" and not fake.responses_api):
                    return self._send(404, error_body(f"no route {self.path}", "not_found"))
                if (refused := fake.refusal_for(route) or fake.safety_refusal(route, body)) is not None:
                    return self._send(*refused)
                if fake.hold_texts and all(text in json.dumps(body) for text in fake.hold_texts):
                    fake._released.wait(60)
                if fake.fail_text and fake.fail_text in json.dumps(body):
                    return self._send(400, error_body("Invalid request: the test server fails it", "invalid_request"))
                streaming = route == "chat" and bool(body.get("stream"))
                delay = 0.0 if wait else fault.delay + fake.delays.get(route, 0.0)  # a refusal answers at once
                if not streaming:
                    time.sleep(delay)
                if fault.status != 200:
                    time.sleep(delay if streaming else 0.0)
                    return self._send(fault.status, fault.body or error_body(f"injected {fault.status}"), fault.headers)
                if fault.body is not None:  # an error inside an HTTP 200 body (OpenRouter, mid-generation)
                    if streaming:
                        return self._stream(fake.chat_envelope(body, index, '{"answer": "'), body, delay, fault.body)
                    return self._send(200, fault.body, fault.headers)
                if fault.malformed or fault.content is not None or fault.refusal is not None:
                    content = fault.content if fault.content is not None else '{"score": "high", "feedback": '
                    reply = fake.chat_envelope(body, index, "" if fault.refusal else content)
                    reply["choices"][0]["finish_reason"] = fault.finish_reason
                    reply["choices"][0]["message"]["refusal"] = fault.refusal
                    return self._stream(reply, body, delay) if streaming else self._send(200, reply)
                reply = fake.reply(route, body, index)
                if streaming:
                    return self._stream(reply, body, delay, headers=limit_headers)
                self._send(200, reply, limit_headers)

            def _stream(
                self,
                reply: dict[str, Any],
                body: dict[str, Any],
                delay: float,
                error: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None,
            ) -> None:
                """`reply` as SSE chunks over `delay` seconds (and `error` as the last one, if given)."""
                name = body.get("response_format", {}).get("json_schema", {}).get("name", "")
                with fake._lock:
                    cuts = fake.cuts.get(name)
                    cut = cuts.popleft() if cuts else None
                events = [*fake.chunks(reply, body, error)]
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    if fake.mode == "openrouter":
                        self.wfile.write(b": OPENROUTER PROCESSING\n\n")
                    for number, event in enumerate(events):
                        if cut is not None and number >= cut:
                            return  # the connection closes: no last chunk, no [DONE]
                        time.sleep(delay / len(events))
                        self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                    if record := getattr(self, "record", None):
                        record.answered = time.monotonic()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                plain = isinstance(payload, str)  # Ollama answers a missing route in plain text
                data = payload.encode() if plain else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "text/plain" if plain else "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                    if record := getattr(self, "record", None):
                        record.answered = time.monotonic()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        base = "/api/v1" if self.mode == "openrouter" else "/v1"
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{base}"
        return self.url

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


def _format(body: dict[str, Any]) -> str:
    tools = body.get("tools") or [{}]
    return str(tools[0].get("output_format", "png")).upper()


ROUTES = {"chat": "/chat/completions", "responses": "/responses", "images": "/images/generations"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Local OpenAI-compatible test server")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--text-rpm", type=float, default=0, help="chat requests per minute (0 = unlimited)")
    parser.add_argument("--image-rpm", type=float, default=0, help="images per minute (0 = unlimited)")
    parser.add_argument("--mode", choices=MODES, default="openai", help="which provider to behave like")
    args = parser.parse_args()
    server = FakeOpenAI(args.mode)
    server.rate_limit(args.text_rpm, args.image_rpm)
    url = server.start(args.port)
    print(f"fake OpenAI at {url} (Ctrl-C to stop)")
    threading.Event().wait()

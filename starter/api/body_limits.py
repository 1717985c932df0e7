"""Request bodies: read only once the caller is known, and never past their route's limit.

A pure ASGI middleware. For a request that carries a body (`Content-Length` > 0, or chunked):
1. an API route (`/v1/…`) decides who calls (`service.caller`: 401, 403 or 429) before a byte is read; the
   answer waits in `request.state.caller` for the route, so the request is charged once;
2. a body over its route's limit is refused with 413: from `Content-Length` at once, else as soon as the
   bytes read pass it, and no more is read.
The studio's pages (sign-in and out) keep their own checks and get the limit. A refused body of at most
DRAIN_BYTES (declared by `Content-Length`) is read and dropped before the answer, as HTTP servers do, so the
answer is not lost to a reset when the client's body arrives after the server has closed; any other answer given
before the body is read closes the connection, so the server does not go on to read what is left of it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.datasets import MAX_BYTES as DATASET_BYTES
from kit.references import MAX_BYTES as REFERENCE_BYTES
from starter.api.errors import ApiProblem, ContentTooLarge, Internal
from starter.api.knowledge import MAX_DOC_BYTES
from starter.api.problems import respond
from starter.api.service import caller

MULTIPART_ALLOWANCE = 64 * 1024  # the multipart framing around the files: boundaries, part headers
KNOWLEDGE_DOCS = 10  # full-size documents one request may add (smaller ones: more)
FILE_ROUTES = {  # routes taking files, by (method, path): the files' limit
    ("POST", "/v1/uploads"): REFERENCE_BYTES,
    ("POST", "/v1/knowledge"): KNOWLEDGE_DOCS * MAX_DOC_BYTES,
    ("POST", "/v1/datasets"): DATASET_BYTES,
}
DRAIN_BYTES = 64 * 1024  # a refused body this small is read and dropped, and the connection kept
DRAIN_WAIT_S = 5.0  # ... when it arrives within this; else the connection closes
CLOSE = {"Connection": "close"}
log = logging.getLogger("atelier.api")


def body_limit(method: str, path: str, max_body_bytes: int) -> int:
    """The most bytes a request to this route may send: its files and their framing, or a JSON or form body."""
    files = FILE_ROUTES.get((method, path.rstrip("/")))
    return files + MULTIPART_ALLOWANCE if files is not None else max_body_bytes


def declared_length(scope: Scope) -> int | None:
    """The body's length from `Content-Length`, 0 when there is no body, None when it is chunked."""
    headers = dict(scope["headers"])
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        return None
    length = headers.get(b"content-length", b"0").strip()
    return int(length) if length.isdigit() else None  # the server refuses a malformed one before we see it


async def drained(receive: Receive, length: int | None) -> bool:
    """Reads and drops a refused body declared at most DRAIN_BYTES long; True when all of it arrived in time."""
    if length is None or length > DRAIN_BYTES:
        return False
    try:
        async with asyncio.timeout(DRAIN_WAIT_S):
            while (message := await receive())["type"] == "http.request" and message.get("more_body"):
                pass
    except TimeoutError:
        return False
    return message["type"] == "http.request"


async def answer(problem: ApiProblem, scope: Scope, receive: Receive, send: Send, *, close: bool = True) -> None:
    """The problem, as the API's exception handlers answer it; the connection closes after it unless told."""
    await respond(problem.problem, problem.headers | (CLOSE if close else {}))(scope, receive, send)


@dataclass
class BodyLimits:
    """Authenticates API requests before their bodies are read, and holds every body to its route's limit."""

    app: ASGIApp
    max_body_bytes: int  # a JSON or form body (ATELIER_API_MAX_BODY_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (length := declared_length(scope)) == 0:
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith("/v1/"):
            try:
                caller(Request(scope), scope["app"].state.service)
            except ApiProblem as problem:
                await answer(problem, scope, receive, send, close=not await drained(receive, length))
                return
            except Exception as exc:  # as the exception handlers answer it (this runs outside them)
                log.exception("unexpected error on %s %s", scope["method"], scope["path"])
                await answer(Internal(exc), scope, receive, send)
                return
        limit = body_limit(scope["method"], scope["path"], self.max_body_bytes)
        if length is not None and length > limit:
            await answer(ContentTooLarge(limit), scope, receive, send)
            return
        await Metered(self.app, limit)(scope, receive, send)


@dataclass
class Metered:
    """One request whose body is counted as it is read: past `limit`, the app reads a disconnect and the
    request is answered 413 (unless its response has begun); what the app sends after that is dropped."""

    app: ASGIApp
    limit: int
    read: int = 0
    started: bool = False  # the app's response has begun
    refused: bool = False  # the body passed the limit
    answered: bool = False  # ... and the 413 went out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def metered_receive() -> Message:
            if self.refused:
                return {"type": "http.disconnect"}
            message = await receive()
            self.read += len(message.get("body", b""))
            if message["type"] == "http.request" and self.read > self.limit:
                self.refused = True
                if not self.started:
                    self.answered = True
                    await answer(ContentTooLarge(self.limit), scope, receive, send)
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if self.answered:
                return
            self.started = self.started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, metered_receive, guarded_send)

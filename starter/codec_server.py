"""`python -m starter codec-server`: lets the Temporal UI decode encrypted payloads, on loopback.

Implements the codec server protocol (POST /encode and /decode with {"payloads": [...]}) and answers
CORS for the UI's origin. In the UI: Settings → Codec Server → http://127.0.0.1:8888.

A loopback service is still reachable from any browser tab: a page whose name resolves to 127.0.0.1 (DNS
rebinding) could ask it to decode. So it answers only requests addressed to a loopback name (the Host
header), reads at most `MAX_BODY` bytes, and with ATELIER_CODEC_TOKEN set wants `Authorization: Bearer
<token>` (the UI sends an access token when "Pass access token" is on).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from kit.codec import EncryptionCodec, parse_key
from models.settings import Settings
from starter.api.hosts import LOOPBACK_NAMES, host_name

MAX_BODY = 8 * 2**20  # a page of the UI's payloads; more is refused (413) before it is read


def rejection(headers: dict[str, str], token: str | None) -> tuple[int, str] | None:
    """Why a request is not served (status, reason), or None: a Host that is not a loopback name, a
    missing or wrong bearer token, a body too large or without a length."""
    host = (headers.get("host") or "").lower()
    if host_name(host) not in LOOPBACK_NAMES:
        return 421, f"host {host or '(none)'} is not served: use http://127.0.0.1:<port>"
    if token is not None:
        sent = headers.get("authorization") or ""
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return 401, "a bearer token is required (ATELIER_CODEC_TOKEN)"
    length = headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return 413, f"the body may be at most {MAX_BODY} bytes"
    return None


def make_server(settings: Settings, host: str = "127.0.0.1", port: int | None = None) -> ThreadingHTTPServer:
    if settings.codec_key is None:
        raise ValueError("the codec server needs ATELIER_CODEC_KEY")
    codec = EncryptionCodec(parse_key(settings.codec_key.get_secret_value()))
    origin = settings.temporal_ui_url.rstrip("/")
    token = settings.codec_token.get_secret_value() if settings.codec_token else None

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _cors(self) -> None:
            self.send_header("access-control-allow-origin", origin)
            self.send_header("access-control-allow-methods", "POST, OPTIONS")
            self.send_header("access-control-allow-headers", "content-type, x-namespace, authorization")

        def _answer(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self._cors()
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_OPTIONS(self) -> None:
            if (refused := rejection({k.lower(): v for k, v in self.headers.items()}, None)) is not None:
                self._answer(refused[0], json.dumps({"error": refused[1]}).encode())
                return
            self.send_response(200)
            self._cors()
            self.end_headers()

        def do_POST(self) -> None:
            if (refused := rejection({k.lower(): v for k, v in self.headers.items()}, token)) is not None:
                self.close_connection = True  # the body stays unread
                self._answer(refused[0], json.dumps({"error": refused[1]}).encode())
                return
            if self.path.rstrip("/") not in {"/encode", "/decode"}:
                self.send_response(404)
                self.end_headers()
                return
            try:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                payloads = json_format.Parse(body, Payloads()).payloads
                work = codec.encode if self.path.rstrip("/") == "/encode" else codec.decode
                result = asyncio.run(work(payloads))
                data = json_format.MessageToJson(Payloads(payloads=result)).encode()
                status = 200
            except Exception as exc:  # a bad request gets a 400 with the reason, never a traceback
                data, status = json.dumps({"error": str(exc)}).encode(), 400
            self._answer(status, data)

    return ThreadingHTTPServer((host, port if port is not None else settings.codec_port), Handler)


def serve(settings: Settings) -> int:
    server = make_server(settings)
    print(f"codec server on http://127.0.0.1:{server.server_address[1]} for {settings.temporal_ui_url}")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0

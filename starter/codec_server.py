"""`python -m starter codec-server`: lets the Temporal UI decode encrypted payloads, on loopback.

Implements the codec server protocol (POST /encode and /decode with {"payloads": [...]}) and answers
CORS for the UI's origin. In the UI: Settings → Codec Server → http://127.0.0.1:8888.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from models.settings import Settings
from workers.codec import EncryptionCodec, parse_key


def make_server(settings: Settings, host: str = "127.0.0.1", port: int | None = None) -> ThreadingHTTPServer:
    if settings.codec_key is None:
        raise ValueError("the codec server needs ATELIER_CODEC_KEY")
    codec = EncryptionCodec(parse_key(settings.codec_key.get_secret_value()))
    origin = settings.temporal_ui_url.rstrip("/")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _cors(self) -> None:
            self.send_header("access-control-allow-origin", origin)
            self.send_header("access-control-allow-methods", "POST, OPTIONS")
            self.send_header("access-control-allow-headers", "content-type, x-namespace")

        def do_OPTIONS(self) -> None:
            self.send_response(200)
            self._cors()
            self.end_headers()

        def do_POST(self) -> None:
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
            self.send_response(status)
            self._cors()
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return ThreadingHTTPServer((host, port if port is not None else settings.codec_port), Handler)


def serve(settings: Settings) -> int:
    server = make_server(settings)
    print(f"codec server on http://127.0.0.1:{server.server_address[1]} for {settings.temporal_ui_url}")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0

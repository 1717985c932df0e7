"""Reference images: verification, size and bomb guards, and the private-address guard."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from activities.references import BadReference, check_url, fetch_url, read_local, verify_image
from tests.fake_openai import png


@pytest.fixture
def image_server():
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("location", "/cat.png")
                self.end_headers()
                return
            body = png(3) if self.path == "/cat.png" else b"<html>not an image</html>"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/x.png", "http://localhost/x.png", "http://10.0.0.8/a.png", "http://[::1]/a.png",
            "http://169.254.169.254/latest/meta-data", "http://192.168.1.1/a.png"],
)  # fmt: skip
def test_private_and_loopback_urls_are_refused(url):
    with pytest.raises(BadReference, match="non-public address"):
        check_url(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://x"])
def test_only_http_and_https(url):
    with pytest.raises(BadReference, match="only http and https"):
        check_url(url)


async def test_private_fetch_refused_unless_allowed(image_server):
    with pytest.raises(BadReference):
        await fetch_url(f"{image_server}/cat.png")
    ref = await fetch_url(f"{image_server}/redirect", allow_private=True)
    assert ref.content_type == "image/png" and ref.data == png(3)


async def test_fetched_non_image_is_refused(image_server):
    with pytest.raises(BadReference, match="not a readable image"):
        await fetch_url(f"{image_server}/page.html", allow_private=True)


def test_local_files(tmp_path):
    good = tmp_path / "ref.png"
    good.write_bytes(png(1))
    assert read_local(str(good)).extension == "png"
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    with pytest.raises(BadReference, match="not a readable image"):
        read_local(str(bad))
    with pytest.raises(BadReference, match="no such file"):
        read_local(str(tmp_path / "missing.png"))


def test_decompression_bomb_is_refused():
    out = io.BytesIO()
    Image.new("1", (9000, 9000)).save(out, "PNG")
    with pytest.raises(BadReference, match="too large"):
        verify_image(out.getvalue(), "bomb.png")


async def test_connects_to_the_address_it_checked_even_when_dns_changes_its_answer(monkeypatch):
    """DNS rebinding: the name answers a public address for the check and loopback afterwards. The
    request must go to the checked address (Host and SNI keep the name), on every redirect hop."""
    import socket

    import httpx

    answers = {"cdn.example": ["93.184.216.34", "127.0.0.1"], "img.example": ["93.184.216.35", "127.0.0.1"]}
    asked: list[str] = []

    def rebinding_dns(host, port, *args, **kwargs):
        asked.append(host)
        address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    seen: list[tuple[str, str, object]] = []

    def serve(request: httpx.Request) -> httpx.Response:  # nothing leaves this process
        seen.append((str(request.url), request.headers["host"], request.extensions.get("sni_hostname")))
        if request.url.path == "/start":
            return httpx.Response(302, headers={"location": "https://img.example/cat.png"})
        return httpx.Response(200, content=png(3))

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    image = await fetch_url("https://cdn.example/start", transport=httpx.MockTransport(serve))
    assert image.content_type == "image/png"
    assert seen == [
        ("https://93.184.216.34/start", "cdn.example", "cdn.example"),
        ("https://93.184.216.35/cat.png", "img.example", "img.example"),
    ], "each hop went to the address that was checked, never to a second answer"
    assert asked == ["cdn.example", "img.example"], "one resolution per hop: the check's"

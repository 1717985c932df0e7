"""Reference images: verification, size and bomb guards, and the private-address guard."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from kit.references import BadReference, check_url, fetch_url, read_local, verify_image
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


@pytest.mark.parametrize("target", ["other-port", "metadata", None])
async def test_the_endpoints_own_host_is_trusted_for_the_first_hop_only(image_server, target):
    """A LocalAI on loopback answers a picture URL on its own host and port: that first hop may be private.
    A redirect from it is checked like any reference URL: another loopback port or the cloud metadata
    address is refused, never fetched."""
    from activities.providers.openai_provider import OpenAIProvider
    from models.image import ImageOptions
    from models.settings import Settings
    from tests.fake_openai import FakeOpenAI

    fake = FakeOpenAI("localai")
    fake.url = fake.start()
    try:
        fake.picture_redirect = {"other-port": f"{image_server}/cat.png",
                                 "metadata": "http://169.254.169.254/latest/meta-data/"}.get(target)  # fmt: skip
        settings = Settings(LLM_BASE_URL=fake.url, LLM_API_KEY="k", IMAGE_API="images", IMAGE_MODEL="stablediffusion")
        routes = OpenAIProvider(settings).routes
        if target is None:
            made = await routes.images("a cat", ImageOptions(background="opaque"), None)
            assert made.data == next(iter(fake.pictures.values())), "a direct URL on the endpoint's host works"
            return
        with pytest.raises(Exception, match="non-public address") as refused:
            await routes.images("a cat", ImageOptions(background="opaque"), None)
        assert (
            "169.254.169.254" in str(refused.value) if target == "metadata" else image_server[7:] in str(refused.value)
        )
    finally:
        fake.stop()


async def test_a_trusted_origin_is_exact_and_only_the_first_hop(image_server):
    from kit.references import origin

    own = origin(image_server)
    assert (await fetch_url(f"{image_server}/cat.png", trusted=own)).data == png(3)
    with pytest.raises(BadReference, match="non-public address"):  # the same origin, but a redirect hop
        await fetch_url(f"{image_server}/redirect", trusted=own)
    scheme, host, port = own
    with pytest.raises(BadReference, match="non-public address"):  # the same host on another port
        await fetch_url(f"{image_server}/cat.png", trusted=(scheme, host, port + 1))
    with pytest.raises(BadReference, match="non-public address"):  # another scheme
        await fetch_url(f"{image_server}/cat.png", trusted=("https", host, port))
    assert origin("https://Img.Example/v1") == ("https", "img.example", 443)
    assert origin("http://[::1]:8000/v1") == ("http", "::1", 8000)

"""Reference images: uploads in the artifact store and http(s) URLs, checked before anything uses them.

Local files are the CLI's to read (`read_local`, on the CLI's machine): it uploads them to the artifact
store, and a workflow gets artifact references. A worker reads only those uploads and guarded URLs
(`load_reference`), never a path on its own disk.

Guards: 20 MB cap, a timeout, Pillow verification, a decompression-bomb limit, http/https
only, and no loopback/private/link-local targets, nor IPv6 addresses that carry one (one guard,
`kit.addresses`, also the webhooks'; checked after DNS resolution and on every redirect) unless
ATELIER_ALLOW_PRIVATE_URLS=1. The connection goes to the address that was checked (Host header and TLS
SNI keep the name), so a DNS answer that changes between the check and the connection (rebinding) cannot
reach a private address.
"""

from __future__ import annotations

import asyncio
import io
import re
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
from PIL import Image

from kit.addresses import refusal
from kit.storage import ArtifactIntegrityError, ArtifactStore, load
from models.artifacts import ArtifactRef
from models.image import is_http_url, is_uploaded

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 64 * 1024 * 1024
MAX_REDIRECTS = 5
FETCH_TIMEOUT_S = 20.0
_CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


class BadReference(ValueError):
    """A reference image that can never be used; retrying will not help."""


@dataclass(frozen=True)
class ReferenceImage:
    name: str
    data: bytes
    content_type: str
    extension: str


def is_url(ref: str) -> bool:
    """Anything with a URL scheme (http:, file:, data:, ...) that is not an existing local path."""
    return bool(_SCHEME.match(ref)) and not Path(ref).exists()


def check_url(url: str, allow_private: bool = False) -> str | None:
    """Refuse non-http(s) URLs and, unless allowed, hosts that resolve to non-public addresses.

    Returns the checked address to connect to (None when private addresses are allowed).
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"}:
        raise BadReference(f"reference {url!r}: only http and https URLs are allowed")
    if not parts.hostname:
        raise BadReference(f"reference {url!r}: URL has no host")
    try:
        parts.port  # noqa: B018  (urlsplit checks the port only when asked)
    except ValueError as exc:
        raise BadReference(f"reference {url!r}: {exc}") from exc
    if allow_private:
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise BadReference(f"reference {url!r}: host {parts.hostname!r} does not resolve ({exc})") from exc
    for info in infos:
        if why := refusal(str(info[4][0])):
            raise BadReference(
                f"reference {url!r}: host {parts.hostname!r} resolves to non-public address {info[4][0]}, {why} "
                "(set ATELIER_ALLOW_PRIVATE_URLS=1 to allow)"
            )
    return str(infos[0][4][0]).split("%", 1)[0]


def pinned(url: str, address: str | None) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL with its host replaced by the checked address, the Host header and the TLS name to keep."""
    if address is None:
        return url, {}, {}
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = host + (f":{parts.port}" if parts.port else "")
    original = parts.hostname + (f":{parts.port}" if parts.port else "")  # type: ignore[operator]
    sni = {"sni_hostname": parts.hostname} if parts.scheme.lower() == "https" else {}
    return parts._replace(netloc=netloc).geturl(), {"host": original}, sni  # type: ignore[return-value]


def verify_image(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> ReferenceImage:
    """Check that bytes are a real image of at most `max_pixels` (the API's uploads: a lower cap); return it
    with its type."""
    if len(data) > MAX_BYTES:
        raise BadReference(f"reference {name!r}: larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
                if img.width * img.height > max_pixels:
                    raise BadReference(
                        f"reference {name!r}: {img.width}x{img.height} pixels is too large (at most {max_pixels:,})"
                    )
                img.verify()
    except BadReference:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadReference(f"reference {name!r}: image too large ({exc})") from exc
    except Exception as exc:
        raise BadReference(f"reference {name!r}: not a readable image") from exc
    if fmt not in _CONTENT_TYPES:
        raise BadReference(f"reference {name!r}: unsupported image format {fmt or 'unknown'}")
    return ReferenceImage(name, data, _CONTENT_TYPES[fmt], fmt.lower().replace("jpeg", "jpg"))


def read_local(path: str) -> ReferenceImage:
    p = Path(path).expanduser()
    if not p.exists():
        raise BadReference(f"reference {path!r}: no such file")
    if not p.is_file():
        raise BadReference(f"reference {path!r}: not a regular file")
    try:
        data = p.read_bytes() if p.stat().st_size <= MAX_BYTES else b""
    except OSError as exc:
        raise BadReference(f"reference {path!r}: cannot be read ({exc.strerror})") from exc
    if p.stat().st_size > MAX_BYTES:
        raise BadReference(f"reference {path!r}: larger than {MAX_BYTES // (1024 * 1024)} MB")
    return verify_image(data, path)


Origin = tuple[str, str, int]  # scheme, host, port


def origin(url: str) -> Origin:
    """A URL's scheme, host (lower case) and port (the scheme's default when none is given)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


async def fetch_url(
    url: str,
    allow_private: bool = False,
    timeout: float = FETCH_TIMEOUT_S,
    transport: httpx.AsyncBaseTransport | None = None,
    trusted: Origin | None = None,
) -> ReferenceImage:
    """Download an image URL, re-checking the target on every redirect, connecting to the address that
    was checked, and capping the size.

    `trusted`: an origin (an image endpoint's own scheme, host and port) whose address may be private, for
    the first hop only: every redirect is checked in full, wherever it points."""
    current = url
    async with httpx.AsyncClient(follow_redirects=False, timeout=timeout, transport=transport) as client:
        for hop in range(MAX_REDIRECTS + 1):
            exempt = hop == 0 and trusted is not None and origin(current) == trusted
            address = await asyncio.to_thread(check_url, current, allow_private or exempt)
            target, headers, extensions = pinned(current, address)
            async with client.stream("GET", target, headers=headers, extensions=extensions) as response:
                if response.is_redirect:
                    current = urljoin(current, response.headers.get("location", ""))
                    continue
                if response.status_code >= 400:
                    message = f"reference {url!r}: HTTP {response.status_code}"
                    if response.status_code in {408, 429} or response.status_code >= 500:
                        raise httpx.HTTPStatusError(message, request=response.request, response=response)
                    raise BadReference(message)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_BYTES:
                        raise BadReference(f"reference {url!r}: larger than {MAX_BYTES // (1024 * 1024)} MB")
                return verify_image(bytes(body), url)
    raise BadReference(f"reference {url!r}: more than {MAX_REDIRECTS} redirects")


async def load_reference(
    store: ArtifactStore, ref: ArtifactRef | str, number: int, allow_private: bool = False
) -> ReferenceImage:
    """A reference image a workflow named, read by a worker: an uploaded artifact or a guarded http(s) URL.

    Anything else (a path, a file: URL, another run's artifact) is refused with one message that does not
    depend on what is on the worker's disk or in the store."""
    if isinstance(ref, str) and is_http_url(ref):
        return await fetch_url(ref, allow_private)
    refused = BadReference(f"reference {number}: not an uploaded artifact or an http(s) URL")
    if not isinstance(ref, ArtifactRef) or not is_uploaded(ref) or not await store.exists(ref.key):
        raise refused
    try:
        data = await load(store, ref)
    except ArtifactIntegrityError:
        raise refused from None
    return verify_image(data, ref.key)

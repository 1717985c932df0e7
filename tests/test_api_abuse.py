"""The API under abuse, against a real keyed API on loopback (uvicorn, a dev server, a workflow worker): one
rate bucket per key whether it comes as a bearer or a studio session; wrong keys, bad session cookies and
sign-in guesses throttled per client address; sign-out ending a session everywhere (another API process on
the same keys file too); and what held when it was probed: tenant isolation on every route and studio page,
artifact paths in many encodings, upload checks, sign-in CSRF and redirects, idempotency keys across
tenants, and no secret in any log or error body.

Each client address is a loopback connection's, or the address uvicorn takes from `X-Forwarded-For` when
it trusts the sender (loopback, by default): so a test speaks from several addresses."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import struct
import threading
import zlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from temporalio.worker import Worker

from kit.api_keys import KeyStore
from kit.storage import LocalStore, kb_doc_key
from models.artifacts import ArtifactRef
from models.conversation import KnowledgeDoc
from models.settings import WORKFLOW_QUEUE
from starter.api.service import RateLimiter
from starter.api.sessions import SESSION_COOKIE
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of, eventually
from workers.registry import WORKFLOWS

pytestmark = pytest.mark.slow  # a dev server, a workflow worker and uvicorn

SAME_SITE = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture(scope="module")
async def site(module_dev_env, tmp_path_factory) -> AsyncIterator[dict[str, Any]]:
    """A keyed API (tenants acme and zeta) with a workflow worker: runs start and answer queries, and no
    activity runs (nothing is made, nothing is paid)."""
    data = tmp_path_factory.mktemp("abuse")
    settings = api_settings(address_of(module_dev_env), data, ATELIER_WEBHOOK_ALLOW_PRIVATE=True)
    store = KeyStore(settings.api_keys_path)
    keys = {tenant: store.add(tenant)[0] for tenant in ("acme", "zeta")}
    async with (
        Worker(module_dev_env.client, task_queue=WORKFLOW_QUEUE, workflows=WORKFLOWS),
        serving(settings, module_dev_env.client) as (base, served),
    ):
        yield {"base": base, "settings": served, "keys": keys, "client": module_dev_env.client}


@contextlib.asynccontextmanager
async def another_api(site: dict[str, Any], **changes: Any) -> AsyncIterator[str]:
    """One more API process's worth on the same keys file (its own limiter), with `changes` to its settings."""
    async with serving(site["settings"].model_copy(update=changes), site["client"]) as (base, _):
        yield base


def speaking_from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def sign_in(base: str, key: str, address: str = "127.0.0.1") -> str:
    """The session cookie a sign-in with `key` gives (from `address`)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        answer = await client.post("/signin", data={"key": key}, headers=speaking_from(address))
    assert answer.status_code == 303, answer.text
    return answer.cookies[SESSION_COOKIE]


def session(cookie: str, address: str = "127.0.0.1") -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={cookie}", **speaking_from(address)}


# ---- one rate bucket per key; failures throttled per address; sign-out ends the session everywhere


async def test_a_key_has_one_rate_bucket_as_a_bearer_and_through_a_studio_session(site):
    key = KeyStore(site["settings"].api_keys_path).add("both")[0]
    async with another_api(site, api_rate_per_minute=4) as base, http(base) as client:
        cookie = await sign_in(base, key)
        bearer = {"Authorization": f"Bearer {key}"}
        answers = [await client.get("/v1/webhooks", headers=h) for h in (bearer, session(cookie)) * 2]
        assert [a.status_code for a in answers] == [200] * 4
        for headers in (session(cookie), bearer):
            limited = await client.get("/v1/webhooks", headers=headers)
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1, limited.text
        page = await client.get("/", headers={**session(cookie), "Accept": "text/html"})
        assert page.status_code == 429 and "text/html" in page.headers["content-type"], page.text
        assert int(page.headers["retry-after"]) >= 1, "a studio page refused for the rate says when to come back"


async def test_the_eleventh_wrong_key_from_an_address_is_refused_but_a_right_key_from_there_is_not(site):
    store = KeyStore(site["settings"].api_keys_path)
    key = store.add("guarded")[0]
    revoked, stored = store.add("guarded")
    store.revoke(stored.id)
    async with another_api(site) as base, http(base) as client:
        right = {"Authorization": f"Bearer {key}"}
        assert [(await client.get("/v1/webhooks", headers=right)).status_code for _ in range(15)] == [200] * 15
        for guess in [f"atl_guess-{n}" for n in range(9)] + [revoked]:
            answer = await client.get("/v1/webhooks", headers={"Authorization": f"Bearer {guess}"})
            assert answer.status_code == 401, "successful requests took nothing from the address's failures"
            assert guess not in answer.text
        eleventh = await client.get("/v1/webhooks", headers={"Authorization": "Bearer atl_guess-11"})
        assert eleventh.status_code == 429 and int(eleventh.headers["retry-after"]) >= 1, eleventh.text
        now_right = await client.get("/v1/webhooks", headers={"Authorization": f"Bearer {key}"})
        assert now_right.status_code == 200, "a guesser sharing the address (a proxy, a NAT) locks nobody out"
        elsewhere = await client.get(
            "/v1/webhooks", headers={"Authorization": "Bearer atl_guess-12", **speaking_from("198.51.100.1")}
        )
        assert elsewhere.status_code == 401, "another address's guesses are its own"


async def test_a_stale_or_forged_session_cookie_is_a_plain_401_and_locks_nobody_out(site):
    """An open tab polling with a signed-out session, or a forged cookie, is not a key guess: it never fills the
    address's failures, and a page it asks for sends it to sign in, forgetting the cookie."""
    key = KeyStore(site["settings"].api_keys_path).add("tabbed")[0]
    async with another_api(site) as base, http(base) as client:
        cookie = await sign_in(base, key, "198.51.100.4")
        page = await client.get("/knowledge", headers={**session(cookie, "198.51.100.4"), "Accept": "text/html"})
        csrf = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        out = await client.post(
            "/signout", data={"csrf": csrf}, headers={**session(cookie, "198.51.100.4"), **SAME_SITE}
        )
        assert out.status_code == 303
        forged = cookie[:-1] + ("0" if cookie[-1] != "0" else "1")
        for held in (cookie, forged):
            polled = [await client.get("/v1/webhooks", headers=session(held, "198.51.100.4")) for _ in range(15)]
            assert [p.status_code for p in polled] == [401] * 15, "a session cookie is no guess"
        right = await client.get(
            "/v1/webhooks", headers={"Authorization": f"Bearer {key}", **speaking_from("198.51.100.4")}
        )
        assert right.status_code == 200
        stale_page = await client.get("/", headers={**session(cookie, "198.51.100.4"), "Accept": "text/html"})
        assert stale_page.status_code == 303 and stale_page.headers["location"].startswith("/signin")
        assert "Max-Age=0" in stale_page.headers["set-cookie"], "the stale cookie is forgotten"


async def test_a_hundred_sign_in_guesses_from_one_address_are_throttled(site):
    key = KeyStore(site["settings"].api_keys_path).add("signer")[0]
    async with another_api(site) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        form = {"Accept": "text/html", **SAME_SITE}
        first = [await client.post("/signin", data={"key": f"atl_guess-{n}"}, headers=form) for n in range(10)]
        assert [a.status_code for a in first] == [401] * 10 and "not valid" in first[0].text
        rest = [await client.post("/signin", data={"key": f"atl_guess-{n}"}, headers=form) for n in range(10, 100)]
        assert sum(a.status_code == 429 for a in rest) >= 80, [a.status_code for a in rest]
        assert int(rest[0].headers["retry-after"]) >= 1 and "Too many failed sign-ins" in rest[0].text
        right = await client.post("/signin", data={"key": key}, headers=form)
        assert right.status_code == 303 and right.cookies[SESSION_COOKIE], "the right key signs in all the same"
        assert all(a.status_code in (401, 429) and "atl_guess" not in a.text for a in rest)
        elsewhere = await client.post("/signin", data={"key": key}, headers={**form, **speaking_from("192.0.2.9")})
        assert elsewhere.status_code == 303 and elsewhere.cookies[SESSION_COOKIE]


async def test_sign_out_ends_the_session_everywhere_another_api_process_included(site):
    key = KeyStore(site["settings"].api_keys_path).add("leaver")[0]
    async with another_api(site) as one, another_api(site) as two, http(one) as first, http(two) as second:
        cookie = await sign_in(one, key)
        copied = await sign_in(two, key)  # another browser, signed in at the other process
        for client in (first, second):
            for held in (cookie, copied):
                assert (await client.get("/v1/webhooks", headers=session(held))).status_code == 200
        page = await first.get("/knowledge", headers={**session(cookie), "Accept": "text/html"})
        csrf = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        out = await first.post("/signout", data={"csrf": csrf}, headers={**session(cookie), **SAME_SITE})
        assert out.status_code == 303 and out.headers["location"] == "/signin"
        assert "Max-Age=0" in out.headers["set-cookie"], "this browser's cookie goes"
        for client in (first, second):
            for held in (cookie, copied):
                refused = await client.get("/v1/webhooks", headers=session(held))
                assert refused.status_code == 401, f"{client.base_url}: a cookie of a signed-out key"
        studio = await second.get("/knowledge", headers={**session(copied), "Accept": "text/html"})
        assert studio.status_code == 303 and studio.headers["location"].startswith("/signin")
        assert (await second.get("/v1/webhooks", headers={"Authorization": f"Bearer {key}"})).status_code == 200
        again = await sign_in(two, key)
        assert (await first.get("/v1/webhooks", headers=session(again))).status_code == 200


def test_sign_outs_and_key_changes_from_many_processes_lose_nothing(tmp_path):
    """Each thread is a process's KeyStore on one keys file: sign-outs (from API processes) and new keys
    (from the CLI) at once; every change is kept."""
    path = tmp_path / "keys.json"
    _, shared = KeyStore(path).add("shared")

    def sign_outs() -> None:
        for _ in range(10):
            KeyStore(path).end_sessions(shared.sha256)

    def new_keys() -> None:
        for _ in range(10):
            KeyStore(path).add("team")

    threads = [threading.Thread(target=work) for work in (sign_outs, new_keys) * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    keys = KeyStore(path).load().keys
    assert len(keys) == 1 + 30 and keys[0].session_generation == 30


def test_the_failure_buckets_stay_bounded_however_many_addresses_fail():
    failures = RateLimiter(per_minute=10, most=100)
    for n in range(1000):
        failures.retry_after(f"198.18.{n // 256}.{n % 256}")
    assert len(failures.buckets) <= 100
    for _ in range(10):
        failures.retry_after("192.0.2.1")
    assert failures.wait("192.0.2.1") > 0 and failures.wait("192.0.2.2") == 0


# ---- what held: regression tests


def png(width: int = 64, height: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 200)).save(out, "PNG")
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that says it is `width`x`height` and holds a few bytes: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


async def raw_get(base: str, target: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET `target` exactly as written (no client tidies `..` or re-encodes it): status and body."""
    where = urlsplit(base)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    lines = [f"GET {target} HTTP/1.1", f"Host: {where.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    try:
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


TRAVERSALS = [
    "../{f}",
    "%2e%2e/{f}",
    "%2E%2E%2F{f}",
    "..%2f{f}",
    ".%2e/{f}",
    "%252e%252e%252f{f}",
    "..%5c{f}",
    "..\\{f}",
    "%c0%ae%c0%ae%c0%af{f}",
    "%ef%bc%8e%ef%bc%8e%ef%bc%8f{f}",
    "%2f..%2f{f}",
    "runs/{run}/..%2f..%2f..%2f{f}",
    "runs/{run}/%2e%2e/%2e%2e/%2e%2e/{f}?width=192",
    "runs/{run}/iteration-01.png%00/../../../{f}",
    "runs/{run}/....//....//....//{f}",
]


async def test_artifact_paths_in_many_encodings_reach_nothing_outside_the_callers_own(site, tmp_path):
    """Keyless (the local tenant reads every run's artifacts) and keyed: the keys file beside the artifact
    folder, and another tenant's run, stay out of reach however the path is written."""
    keyless = api_settings(site["settings"].temporal_address, tmp_path)
    for settings, key in ((keyless, None), (site["settings"], site["keys"]["zeta"])):
        (settings.data_dir / "outside.txt").write_text("outside-the-store")
        await LocalStore(settings.artifact_dir).put("runs/acme.image-x/iteration-01.png", png(), "image/png")
        async with serving(settings, site["client"]) as (base, served):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            secret = KeyStore(served.api_keys_path).load().session_secret.encode()
            assert secret, "the keys file (and its session secret) sits beside the artifacts"
            own = await raw_get(base, "/v1/artifacts/runs/acme.image-x/iteration-01.png", headers)
            assert own[0] == (404 if key else 200), "the probe reaches the API (keyed: another tenant's run)"
            for file in ("api-keys.json", "outside.txt", "../outside.txt"):
                for pattern in TRAVERSALS:
                    target = "/v1/artifacts/" + pattern.format(f=file, run="acme.image-x")
                    status, body = await raw_get(base, target, headers)
                    assert status == 404, (target, status, body[:200])
                    assert secret not in body and b"outside-the-store" not in body and b"atl_" not in body, target


async def test_tenant_isolation_on_every_route_and_studio_page(site):
    base, keys, settings = site["base"], site["keys"], site["settings"]
    async with http(base, keys["acme"]) as acme, http(base, keys["zeta"]) as zeta:
        run = (await acme.post("/v1/images", json={"prompt": "acme's lamp", "max_iterations": 1})).json()["id"]
        talk = (await acme.post("/v1/conversations")).json()["id"]
        hook = (await acme.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hooks"})).json()["id"]
        store = LocalStore(settings.artifact_dir)
        picture = f"runs/{run}/iteration-01.png"
        await store.put(picture, png(), "image/png")
        source = ArtifactRef(key="kb/x.md", sha256="0" * 64, size=1, content_type="text/markdown")
        doc = KnowledgeDoc(doc_id="acme-doc", name="secret plans", source=source, chunks=[])
        await store.put(kb_doc_key(doc.doc_id, "acme"), doc.model_dump_json().encode(), "application/json")

        nobody, no_talk = "acme.image-nope", "acme.conversation-nope"
        probes = [
            ("GET", f"/v1/runs/{run}", None),
            ("GET", f"/v1/runs/{run}/result", None),
            ("GET", f"/v1/runs/{run}/events", None),
            ("GET", f"/v1/runs/{run}/deliveries", None),
            ("POST", f"/v1/runs/{run}/deliveries/d_1/redeliver", None),
            ("POST", f"/v1/runs/{run}/feedback", {"text": "make it zeta's"}),
            ("POST", f"/v1/runs/{run}/cancel", None),
            ("GET", f"/v1/artifacts/{picture}", None),
            ("GET", f"/v1/artifacts/{picture}?width=192", None),
            ("GET", f"/v1/conversations/{talk}", None),
            ("POST", f"/v1/conversations/{talk}/messages", {"text": "hi"}),
        ]
        for method, path, body in probes:
            theirs = await zeta.request(method, path, json=body)
            unknown = await zeta.request(method, path.replace(run, nobody).replace(talk, no_talk), json=body)
            assert theirs.status_code == unknown.status_code == 404, (path, theirs.text)
        small = await acme.get(f"/v1/artifacts/{picture}?width=192")
        assert small.status_code == 200 and small.headers["content-type"] == "image/webp"
        rerun = await zeta.post("/v1/images", json={"prompt": "x", "rerun_of": run})
        assert rerun.status_code == 422 and rerun.json()["errors"][0]["field"] == "body.rerun_of"
        assert (await zeta.delete(f"/v1/webhooks/{hook}")).status_code == 404
        assert hook not in [e["id"] for e in (await zeta.get("/v1/webhooks")).json()]
        assert hook in [e["id"] for e in (await acme.get("/v1/webhooks")).json()]
        await eventually(
            lambda: _listed(acme, run), 30, "acme's run in its own list"
        )  # visibility is eventually consistent: acme sees it first, then zeta must not
        assert run not in [r["id"] for r in (await zeta.get("/v1/runs")).json()["runs"]]

    pages = [
        f"/runs/{run}",
        f"/runs/{run}/part",
        f"/runs/{run}/thumbnail",
        f"/compare?run={run}&run=zeta.image-nope",
        f"/new/image?start_from={run}",
        f"/conversations/{talk}",
        "/knowledge/acme-doc",
    ]
    as_acme = session(await sign_in(base, keys["acme"]))
    as_zeta = session(await sign_in(base, keys["zeta"]))
    async with httpx.AsyncClient(base_url=base, timeout=30, headers={"Accept": "text/html"}) as browser:
        for path in pages:
            theirs = await browser.get(path, headers=as_zeta)
            assert theirs.status_code == 404 and "secret plans" not in theirs.text, (path, theirs.status_code)
            if "compare" not in path:
                assert (await browser.get(path, headers=as_acme)).status_code in (200, 307), path
        for listing, shown in (("/", run), ("/conversations", talk)):
            assert shown in (await browser.get(listing, headers=as_acme)).text, listing
            assert shown not in (await browser.get(listing, headers=as_zeta)).text, listing


async def _listed(client: httpx.AsyncClient, run_id: str) -> bool:
    return run_id in [r["id"] for r in (await client.get("/v1/runs")).json()["runs"]]


async def test_an_idempotency_key_is_each_tenants_own(site):
    base, keys = site["base"], site["keys"]
    body, same = {"topic": "tuesdays", "format": "drake"}, {"Idempotency-Key": "shared-key-1"}
    async with http(base, keys["acme"]) as acme, http(base, keys["zeta"]) as zeta:
        mine = await acme.post("/v1/memes", json=body, headers=same)
        theirs = await zeta.post("/v1/memes", json=body, headers=same)
        other_body = await zeta.post("/v1/memes", json={**body, "topic": "x"}, headers={"Idempotency-Key": "k2"})
        assert mine.status_code == theirs.status_code == other_body.status_code == 202
        assert mine.json()["id"].startswith("acme.") and theirs.json()["id"].startswith("zeta.")
        assert (await zeta.post("/v1/memes", json=body, headers=same)).json()["id"] == theirs.json()["id"]
        assert (await zeta.get(f"/v1/runs/{mine.json()['id']}")).status_code == 404


async def test_uploads_take_pictures_only_and_refuse_a_30000_square_bomb(site):
    async with http(site["base"], site["keys"]["acme"]) as acme:
        refused = {
            "bomb.png": (png_header_only(30000, 30000), "image/png"),
            "script.png": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/png"),
            "page.png": (b"<!doctype html><script>alert(1)</script>", "image/png"),
            "empty.png": (b"", "image/png"),
        }
        for name, (data, content_type) in refused.items():
            answer = await acme.post("/v1/uploads", files={"file": (name, data, content_type)})
            assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "body.file", name
        assert (await acme.post("/v1/uploads", files={"file": ("ok.png", png(), "image/png")})).status_code == 201


async def test_sign_in_refuses_other_sites_goes_back_only_here_and_refuses_tampered_sessions(site):
    keys = site["keys"]
    async with another_api(site) as fresh, httpx.AsyncClient(base_url=fresh, timeout=30) as client:
        for foreign in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}):
            forced = await client.post("/signin", data={"key": keys["acme"]}, headers=foreign)
            assert forced.status_code == 403 and SESSION_COOKIE not in forced.cookies, "no login CSRF"
        for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
            answer = await client.post("/signin", params={"next": elsewhere}, data={"key": keys["acme"]})
            assert answer.status_code == 303 and answer.headers["location"] == "/", elsewhere
        client.cookies.clear()
        cookie = await sign_in(fresh, keys["acme"])
        digest, generation, expires, mac = cookie.split(".")
        zeta_digest = KeyStore(site["settings"].api_keys_path).find(keys["zeta"]).sha256
        for tampered in (
            f"{zeta_digest}.{generation}.{expires}.{mac}",
            f"{digest}.{int(generation) + 1}.{expires}.{mac}",
            f"{digest}.{generation}.{int(expires) + 3600}.{mac}",
            f"{digest}.{expires}.{mac}",
        ):
            assert (await client.get("/v1/webhooks", headers=session(tampered))).status_code == 401, tampered
        assert (await client.get("/v1/webhooks", headers=session(cookie))).status_code == 200


async def test_no_secret_reaches_a_log_or_an_error_body(site, caplog):
    keys, settings = site["keys"], site["settings"]
    store = KeyStore(settings.api_keys_path)
    secrets = [keys["acme"], keys["zeta"], store.load().session_secret, store.webhook_secret("acme")]
    loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    caplog.set_level(logging.DEBUG)
    answers: list[httpx.Response] = []
    async with another_api(site, api_rate_per_minute=5) as fresh, http(fresh) as client:
        for logger in loggers:  # uvicorn's own loggers do not propagate (and are set up as it starts)
            logger.addHandler(caplog.handler)
        try:
            cookie = await sign_in(fresh, keys["acme"], "203.0.113.5")
            secrets.append(cookie)
            acme = {"Authorization": f"Bearer {keys['acme']}", **speaking_from("203.0.113.6")}
            wrong = {"Authorization": f"Bearer {keys['acme']}x", **speaking_from("203.0.113.7")}
            answers += [await client.get("/v1/runs", headers=wrong) for _ in range(11)]  # 401s, then a 429
            guess = {"key": keys["zeta"] + "x"}
            answers.append(await client.post("/signin", data=guess, headers=speaking_from("203.0.113.8")))
            answers.append(await client.post("/signin", data={"key": keys["zeta"]}, headers=wrong))  # throttled
            answers.append(await client.post("/v1/runs/zeta.image-x/cancel", headers={**session(cookie), **SAME_SITE}))
            answers += [await client.get("/v1/runs/zeta.image-x", headers=acme) for _ in range(5)]  # the last: 429
        finally:
            for logger in loggers:
                logger.removeHandler(caplog.handler)
    statuses = [a.status_code for a in answers]
    assert {401, 403, 404, 429} <= set(statuses), statuses
    for answer in answers:
        shown = answer.text + str({k: v for k, v in answer.headers.items() if k != "set-cookie"})
        assert not [s for s in secrets if s in shown], (answer.request.url.path, answer.status_code)
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]  # not the test's client
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in server)
    assert not [s for s in secrets if s in logged]
    assert "too many failed sign-ins" in logged, "the throttle is logged (the address, never the key)"

"""Who may use the studio: on loopback without keys, anyone on this machine, and no other site (a forged
cross-site request, a rebound DNS name or a frame gets nothing); with keys, a signed-in tenant, its own runs
only, every unsafe request carrying the session's CSRF token. In chromium where it is about a browser; with
httpx, sending what another site's page would make a browser send, where it is about the API's answer."""

# ruff: noqa: F811 — the fixtures are imported from tests/studio_support.py and taken as arguments
from __future__ import annotations

import hashlib
import hmac
import re
from types import SimpleNamespace

import httpx
import pytest
from pydantic import SecretStr
from starlette.requests import Request

from kit.api_keys import KeyStore
from models.artifacts import ArtifactRef
from models.image import Iteration, Refusal
from starter.api.errors import ApiProblem
from starter.api.sessions import Session, check_csrf, csrf_token, new_session, read_session
from starter.studio.access import safe_next
from starter.studio.compare import HEIGHT, PAD, WIDTH, compared
from starter.studio.run_views import ImageView
from tests.api_support import serving
from tests.studio_support import DESKTOP, Watched, browser, checked, finished, shots, studio  # noqa: F401

SECRET = "s3cret"


def request(method: str, headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": method, "path": "/", "headers": raw, "scheme": "http",
                    "server": ("127.0.0.1", 8000), "query_string": b""})  # fmt: skip


def test_a_session_cookie_is_signed_expires_and_refuses_tampering():
    cookie = new_session(SECRET, "ab" * 32, 3, now=1000.0)
    assert read_session(SECRET, cookie, now=1001.0) == Session("ab" * 32, 3)
    assert read_session(SECRET, cookie, now=1000.0 + 8 * 24 * 3600) is None, "expired after seven days"
    assert read_session("another secret", cookie, now=1001.0) is None
    key, generation, expires, mac = cookie.split(".")
    assert read_session(SECRET, f"{'cd' * 32}.{generation}.{expires}.{mac}", now=1001.0) is None, "another key's"
    assert read_session(SECRET, f"{key}.4.{expires}.{mac}", now=1001.0) is None, "another generation"
    before = hmac.new(SECRET.encode(), f"{key}.{expires}".encode(), hashlib.sha256).hexdigest()
    assert read_session(SECRET, f"{key}.{expires}.{before}", now=1001.0) is None, "made before generations"
    for forged in (f"{key}.3.²³.{mac}", f"{key}.3.{expires}.é", f"{key}.3.{'9' * 5000}.{mac}", "", "...", "x"):
        assert read_session(SECRET, forged, now=1001.0) is None  # never an exception (a 500)
    with pytest.raises(ValueError):
        new_session("", "ab" * 32, 0)  # no secret: nothing is signed


def test_unsafe_browser_requests_must_come_from_this_site_and_carry_the_sessions_token():
    cookie = new_session(SECRET, "ab" * 32, 0)
    token = csrf_token(SECRET, cookie)
    same = {"host": "127.0.0.1:8000", "sec-fetch-site": "same-origin"}
    check_csrf(request("POST", {"host": "127.0.0.1:8000"}), SECRET, None)  # curl, an SDK: no browser headers
    check_csrf(request("POST", same), SECRET, None)  # keyless: this site's own page
    check_csrf(request("POST", {**same, "x-csrf-token": token}), SECRET, cookie)
    check_csrf(request("GET", {"host": "x", "sec-fetch-site": "cross-site"}), SECRET, cookie)  # reads are safe
    refused = [
        ({"host": "127.0.0.1:8000", "sec-fetch-site": "cross-site"}, None),
        ({"host": "127.0.0.1:8000", "sec-fetch-site": "same-site"}, None),
        ({"host": "127.0.0.1:8000", "origin": "http://evil.example"}, None),
        (same, cookie),  # a session without the token
        ({**same, "x-csrf-token": "é" * 40}, cookie),
        ({**same, "x-csrf-token": csrf_token(SECRET, "another")}, cookie),
    ]
    for headers, session in refused:
        with pytest.raises(ApiProblem) as caught:
            check_csrf(request("DELETE", headers), SECRET, session)
        assert caught.value.problem.status == 403, headers
    check_csrf(request("POST", {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}), SECRET, None)


def test_sign_in_goes_back_only_to_a_path_of_this_site():
    assert safe_next("/runs/a?b=1") == "/runs/a?b=1"
    for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", ""):
        assert safe_next(elsewhere) == "/"


def test_the_chart_places_every_iteration_inside_it_when_some_were_refused():
    ref = ArtifactRef(key="runs/r/iteration-02.png", sha256="0" * 64, size=1, content_type="image/png")
    scored = [Iteration(number=n, prompt="p", image=ref, response_id="x", score=50 + n, feedback="f") for n in (2, 3)]
    view = ImageView(scored, [Refusal(iteration=1, prompt="p", reason="r", category="c")], best=3)
    head = SimpleNamespace(id="r", job={"prompt": "p", "threshold": 80})
    other = SimpleNamespace(id="s", job={"prompt": "p", "threshold": 90})
    found = compared([(head, view), (other, ImageView())])
    (_, _, points), (_, _, none) = found.lines
    assert len(points) == 2 and none == []
    assert all(PAD <= x <= WIDTH - PAD and PAD <= y <= HEIGHT - PAD for x, y, _ in points), points
    assert [card[0] for card in view.cards] == ["refusal", "iteration", "iteration"], "in the order they ran"
    assert [name for name, _, differs in found.settings if differs] == ["threshold"]


@pytest.mark.slow
async def test_a_keyless_api_answers_no_other_site_and_no_other_name(studio):
    base, _ = studio
    port = base.rsplit(":", 1)[1]
    async with httpx.AsyncClient(base_url=base) as client:
        page = await client.get("/", headers={"Accept": "text/html"})
        assert (
            page.headers["x-frame-options"] == "DENY"
            and "frame-ancestors 'none'" in page.headers["content-security-policy"]
        )
        rebound = await client.get("/v1/runs", headers={"Host": f"evil.example:{port}"})
        assert rebound.status_code == 403 and "loopback" in rebound.json()["detail"]
        assert (await client.get("/v1/runs", headers={"Host": f"localhost:{port}"})).status_code == 200
        forged = await client.post("/v1/images", json={"prompt": "x"}, headers={"Origin": "http://evil.example"})
        assert forged.status_code == 403
        framed = await client.post("/v1/runs/none/cancel", headers={"Sec-Fetch-Site": "cross-site"})
        assert framed.status_code == 403
        own = await client.post("/v1/runs/none/cancel", headers={"Sec-Fetch-Site": "same-origin", "Origin": base})
        assert own.status_code == 404, "this site's own page gets through (to: no such run)"
        width = await client.get("/v1/artifacts/runs/x/iteration-01.png", params={"width": 100})
        assert width.status_code == 422 and width.json()["errors"][0]["field"] == "query.width"
        missing = await client.get("/runs/local.image-nope", headers={"Accept": "text/html"})
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
        five = await client.get("/compare", params={"run": list("abcde")}, headers={"Accept": "text/html"})
        assert five.status_code == 422 and "<h1>" in five.text


@pytest.mark.slow
@pytest.mark.browser
async def test_with_keys_a_tenant_signs_in_and_cannot_reach_another_tenants_run(
    module_dev_env, studio, browser, tmp_path
):
    _, keyless = studio
    settings = keyless.model_copy(update={"database_url": SecretStr(f"sqlite:///{tmp_path / 'keys.db'}")})
    store = KeyStore(settings)  # a database of this test's own keys
    acme, _ = store.add("acme")
    zeta, _ = store.add("zeta")
    async with serving(settings, module_dev_env.client) as (keyed, _):
        async with httpx.AsyncClient(base_url=keyed, headers={"Authorization": f"Bearer {acme}"}) as client:
            created = await client.post("/v1/images", json={"prompt": "acme's lighthouse", "max_iterations": 1})
        run_id = created.json()["id"]
        await finished(keyed, run_id, acme)
        contexts = {}
        for tenant, key in (("acme", acme), ("zeta", zeta)):
            context = contexts[tenant] = await browser.new_context(viewport=DESKTOP)
            watched = Watched(await context.new_page())
            watched.expect_status(401, 403, 404)  # a wrong key, a forged POST, another tenant's run
            p = watched.page
            await p.goto(f"{keyed}/runs/{run_id}")
            assert "/signin" in p.url, "a keyed studio asks for a key first"
            await p.get_by_label("API key").fill("atl_not-a-key")
            await p.get_by_role("button", name="Sign in").click()
            await p.get_by_text("That key is not valid").wait_for()
            await checked(watched)
            await p.get_by_label("API key").fill(key)
            await p.get_by_role("button", name="Sign in").click()
            await p.wait_for_load_state("load")
            cookie = next(c for c in await context.cookies() if c["name"] == "atelier_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            if tenant == "acme":
                assert p.url.endswith(f"/runs/{run_id}")
                await p.wait_for_selector("[data-iteration='1'] img")
                forged = await p.evaluate(f"fetch('/v1/runs/{run_id}/cancel', {{method: 'POST'}}).then(r => r.status)")
                assert forged == 403, "a browser's POST without the page's CSRF token is refused"
                assert not watched.errors, watched.errors
            else:
                assert await p.get_by_role("heading", name="not found").count() == 1
                picture = await p.evaluate(f"fetch('/v1/artifacts/runs/{run_id}/iteration-01.png').then(r => r.status)")
                listed = await p.evaluate("fetch('/v1/runs').then(r => r.json()).then(j => j.runs.length)")
                assert (picture, listed) == (404, 0)
                await p.goto(f"{keyed}/")
                await p.get_by_role("button", name="Sign out").click()
                await p.wait_for_url(re.compile("/signin"))
                await p.goto(f"{keyed}/")
                assert "/signin" in p.url
        await shots(browser, f"{keyed}/signin", "signin")
        for context in contexts.values():
            await context.close()

"""The private-address guard (`kit.addresses`) over IPv4 and the IPv6 forms that carry an IPv4
address; the API refusing such hosts where a caller names a URL (webhook endpoints, a create's `webhook`,
reference URLs; keyless and keyed), and the webhook sender refusing them before it connects."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv6Address

import pytest
from temporalio.testing import ActivityEnvironment

from activities.webhooks import WebhookSender
from kit.addresses import blocked, embedded_ipv4, refusal
from kit.api_keys import KeyStore
from kit.references import BadReference, check_url
from models.events import SendRequest
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of

# The issue's three: IPv4-compatible, NAT64 and 6to4 forms of 127.0.0.1.
ISSUE = ["::7f00:1", "64:ff9b::7f00:1", "2002:7f00:1::"]

REFUSED = [
    *ISSUE,
    "127.0.0.1", "10.0.0.8", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
    "240.0.0.1", "192.0.0.8", "::1", "::", "fe80::1%eth0", "fc00::1", "fec0::1", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped, private inside
    "::808:808",  # IPv4-compatible, even of a public address
    "::ffff:0:808:808",  # IPv4-translated
    "64:ff9b::a9fe:a9fe", "64:ff9b::c0a8:101",  # NAT64 of metadata and a private address
    "64:ff9b:1::808:808",  # local-use NAT64
    "2002:a00:1::", "2002:a9fe:a9fe::1",  # 6to4 of private and link-local addresses
    "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]  # fmt: skip
ALLOWED = [
    "8.8.8.8", "93.184.216.34", "2001:4860:4860::8888", "2606:4700:4700::1111",
    "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",  # carrying a public IPv4 address
]  # fmt: skip


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_and_the_ipv6_forms_that_carry_them_are_refused(address):
    assert blocked(address), f"{address} passed the guard"


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address):
    assert refusal(address) is None


def test_the_embedded_ipv4_address_is_read_from_each_prefix():
    carried = [embedded_ipv4(IPv6Address(a)) for a in ("64:ff9b::7f00:1", "2002:7f00:1::", "::ffff:10.1.2.3")]
    assert carried == [IPv4Address("127.0.0.1"), IPv4Address("127.0.0.1"), IPv4Address("10.1.2.3")]
    assert embedded_ipv4(IPv6Address("2606:4700:4700::1111")) is None


@pytest.mark.parametrize("address", ISSUE)
def test_check_url_refuses_the_issue_addresses_and_says_why(address):
    with pytest.raises(BadReference, match="non-public address") as refused:
        check_url(f"http://[{address}]:8080/a.png")
    assert "127.0.0.1" in str(refused.value) or "IPv4-compatible" in str(refused.value)


@pytest.fixture(scope="module")
async def apis(module_dev_env, tmp_path_factory) -> AsyncIterator[dict[str, tuple[str, str | None]]]:
    """A keyless API and a keyed one (its key), guarded as deployed, on one dev server; no worker runs."""
    client = module_dev_env.client
    keyless = api_settings(address_of(module_dev_env), tmp_path_factory.mktemp("keyless"))
    keyed = api_settings(address_of(module_dev_env), tmp_path_factory.mktemp("keyed"))
    key = KeyStore(keyed.api_keys_path).add("acme")[0]
    async with contextlib.AsyncExitStack() as stack:
        open_base, _ = await stack.enter_async_context(serving(keyless, client))
        keyed_base, _ = await stack.enter_async_context(serving(keyed, client))
        yield {"keyless": (open_base, None), "keyed": (keyed_base, key)}


@pytest.mark.slow  # a dev server and uvicorn
@pytest.mark.parametrize("who", ["keyless", "keyed"])
@pytest.mark.parametrize("address", ISSUE)
async def test_the_api_refuses_ipv6_hosts_carrying_loopback_naming_the_field(apis, who, address):
    base, key = apis[who]
    url = f"http://[{address}]:8080/"
    async with http(base, key) as client:
        answers = [
            (await client.post("/v1/webhooks", json={"url": url + "hooks"}), "body.url"),
            (await client.post("/v1/memes", json={"topic": "mondays", "webhook": url + "hooks"}), "body.webhook"),
            (await client.post("/v1/images", json={"prompt": "a fox", "references": [url + "a.png"]}),
             "body.references.0"),
        ]  # fmt: skip
        for answer, field in answers:
            assert answer.status_code == 422, (field, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["errors"][0]["field"] == field
            assert "non-public address" in answer.json()["errors"][0]["message"]
        assert (await client.get("/v1/webhooks")).json() == [], "no endpoint registered"
        assert (await client.get("/v1/runs")).json()["runs"] == [], "nothing started"


@pytest.mark.parametrize("address", ISSUE)
async def test_a_webhook_send_to_such_a_host_is_refused_before_any_connection(address, tmp_path):
    settings = api_settings("127.0.0.1:9", tmp_path)
    request = SendRequest(
        delivery_id="run~hook-1", tenant="local", url=f"http://[{address}]:8080/hooks", payload={}, attempt=1
    )
    sent = await ActivityEnvironment().run(WebhookSender(settings).send_webhook, request)
    assert sent.status is None and sent.error and "non-public address" in sent.error, sent

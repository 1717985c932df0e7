"""Which IP addresses a worker or the API may connect to on a caller's behalf (reference URLs, webhooks):
the one guard behind `kit.references.check_url`.

An address is refused when it is not global: loopback, private, link-local, shared, documentation,
multicast, unspecified or reserved. IPv6 addresses that carry an IPv4 address are decided per prefix,
never by `is_global` alone (which, depending on the Python version, is true for several of them):

| prefix | what | decision |
| --- | --- | --- |
| `::ffff:0:0/96` | IPv4-mapped (the socket speaks IPv4) | the embedded IPv4 address is judged |
| `64:ff9b::/96` | NAT64, well-known prefix (DNS64 answers on IPv6-only networks) | the embedded IPv4 is judged |
| `2002::/16` | 6to4 | the embedded IPv4 is judged |
| `::/96` | IPv4-compatible (deprecated, RFC 4291) | refused |
| `::ffff:0:0:0/96` | IPv4-translated (SIIT) | refused |
| `64:ff9b:1::/48` | NAT64, local use (RFC 8215: the embedding is the network's own) | refused |
| `2001::/32` | Teredo (the client's IPv4 address is obfuscated) | refused |
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes whose addresses embed an IPv4 address in their last 32 bits, judged by it.
_EMBEDS_LAST_32 = (ipaddress.IPv6Network("::ffff:0:0/96"), ipaddress.IPv6Network("64:ff9b::/96"))
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
# IETF protocol assignments: not global, although Python before 3.12.4 calls most of them so.
_IETF_V4 = ipaddress.IPv4Network("192.0.0.0/24")
_REFUSED_V6 = {
    ipaddress.IPv6Network("::/96"): "an IPv4-compatible address",
    ipaddress.IPv6Network("::ffff:0:0:0/96"): "an IPv4-translated address",
    ipaddress.IPv6Network("64:ff9b:1::/48"): "a local-use NAT64 address",
    ipaddress.IPv6Network("2001::/32"): "a Teredo address",
}


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 (well-known prefix) or 6to4 address carries; None otherwise."""
    if any(ip in net for net in _EMBEDS_LAST_32):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)
    return None


def refusal(address: str | IPAddress) -> str | None:
    """Why a caller may not make us connect to `address` (None: it is a public address). A zone id
    (`fe80::1%eth0`) is ignored; the address is link-local either way."""
    ip = address if not isinstance(address, str) else ipaddress.ip_address(address.split("%", 1)[0])
    if ip.is_unspecified or ip.is_loopback:
        return "a loopback or unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv6Address):
        for net, what in _REFUSED_V6.items():
            if ip in net:
                return what
        if (inner := embedded_ipv4(ip)) is not None:
            why = refusal(inner)
            return f"which carries {inner}, {why}" if why else None
        if ip.is_site_local:
            return "a non-public address"
    elif ip in _IETF_V4:
        return "a non-public address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global or ip.is_private or ip.is_link_local:
        return "a non-public address"
    return None


def blocked(address: str | IPAddress) -> bool:
    """Whether `address` is refused (`refusal` says why)."""
    return refusal(address) is not None

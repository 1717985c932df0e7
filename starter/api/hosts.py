"""Loopback: whether an address the API listens on is loopback only, and the names a loopback-only server
answers to in a request's Host header."""

from __future__ import annotations

import ipaddress
import socket

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})


def host_name(header: str | None) -> str:
    """The name in a Host header, lower-case, without its port (`[::1]` kept whole)."""
    host = (header or "").lower()
    return host if host.endswith("]") else host.rsplit(":", 1)[0]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False

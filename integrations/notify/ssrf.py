"""The SSRF guard: a webhook may not make Optio call into its own network.

Checked when a webhook is saved and again at each delivery, on every address the host
resolves to (a name that resolved to a public address yesterday may not today).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrlError(ValueError):
    """The URL is not http(s), or its host is a private, loopback or link-local address."""


def _blocked(address: IpAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _allowed(address: IpAddress, allowlist: list[str]) -> bool:
    for entry in allowlist:
        if entry.strip() == "*":
            return True
        try:
            if address in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def split_target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrlError("The URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise UnsafeUrlError("The URL must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeUrlError("The URL's port is not a number") from exc
    return parts.hostname, port


def check_addresses(host: str, addresses: list[str], allowlist: list[str]) -> None:
    if not addresses:
        raise UnsafeUrlError(f"The host {host} does not resolve")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if _blocked(address) and not _allowed(address, allowlist):
            raise UnsafeUrlError(
                f"The host {host} resolves to {address}, a private, loopback or link-local "
                "address; Optio does not deliver there unless OPTIO_WEBHOOK_PRIVATE_ALLOWLIST "
                "allows it"
            )


async def assert_safe_url(url: str, *, allowlist: list[str]) -> None:
    """Raise UnsafeUrlError unless every address the URL's host resolves to is allowed."""
    host, port = split_target(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeUrlError(f"The host {host} does not resolve") from exc
    check_addresses(host, sorted({str(info[4][0]) for info in infos}), allowlist)

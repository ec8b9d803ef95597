"""The SSRF guard and the signatures, on their own."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from integrations.notify.signing import signature_headers, slack_signature_ok
from integrations.notify.ssrf import UnsafeUrlError, assert_safe_url, check_addresses


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.10",
        "127.0.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::5",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "224.0.0.1",
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(address: str) -> None:
    with pytest.raises(UnsafeUrlError):
        check_addresses("host", [address], [])


def test_public_addresses_pass_and_the_allowlist_opens_exactly_what_it_names() -> None:
    check_addresses("host", ["93.184.216.34", "2606:2800:220:1::1"], [])
    check_addresses("host", ["127.0.0.1"], ["127.0.0.1"])
    check_addresses("host", ["10.20.3.4"], ["10.20.0.0/16"])
    with pytest.raises(UnsafeUrlError):
        check_addresses("host", ["10.21.0.1"], ["10.20.0.0/16"])
    # One bad address among good ones is enough to refuse (a name may resolve to several).
    with pytest.raises(UnsafeUrlError):
        check_addresses("host", ["93.184.216.34", "127.0.0.1"], [])


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "http://user:pw@127.0.0.1/", "http:///nohost", "file:///etc"]
)
async def test_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        await assert_safe_url(url, allowlist=["*"])


async def test_a_name_is_checked_by_what_it_resolves_to() -> None:
    with pytest.raises(UnsafeUrlError):
        await assert_safe_url("http://localhost:9/hook", allowlist=[])


def test_signatures_cover_body_and_timestamp() -> None:
    body = b'{"event":"task.failed"}'
    headers = signature_headers("k" * 16, body, timestamp=1700000000)
    assert headers["X-Optio-Signature"] == hmac.new(b"k" * 16, body, hashlib.sha256).hexdigest()
    signed = hmac.new(b"k" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert headers["X-Optio-Signature-256"] == f"t=1700000000,v1={signed}"
    assert signature_headers(None, body, timestamp=1) == {"X-Optio-Timestamp": "1"}


def test_slack_v0_signatures() -> None:
    body, stamp = b"payload=%7B%7D", "1700000000"
    good = "v0=" + hmac.new(b"s", b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    now = 1700000010.0

    def ok(**kw: object) -> bool:
        args: dict[str, object] = {
            "body": body,
            "timestamp": stamp,
            "signature": good,
            "now": now,
            "max_age_seconds": 300,
        } | kw
        return slack_signature_ok("s", **args)  # type: ignore[arg-type]

    assert ok()
    assert not ok(signature=good[:-1] + "0")
    assert not ok(body=body + b"x")
    assert not ok(now=now + 3600)
    assert not ok(timestamp="abc")
    assert not ok(signature=None)

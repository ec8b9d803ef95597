"""Signatures of outgoing deliveries, and the check of Slack's signed requests.

`X-Optio-Signature` is the reference's: hex HMAC-SHA256 of the body. It says nothing of
when the body was sent, so a captured delivery could be replayed for ever;
`X-Optio-Signature-256` signs the timestamp with the body (`t=<unix>,v1=<hex>` over
`"<unix>.<body>"`), and receivers that check it can refuse old ones.
"""

from __future__ import annotations

import hashlib
import hmac


def body_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def timestamped_signature(secret: str, body: bytes, *, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def signature_headers(secret: str | None, body: bytes, *, timestamp: int) -> dict[str, str]:
    headers = {"X-Optio-Timestamp": str(timestamp)}
    if secret:
        headers["X-Optio-Signature"] = body_signature(secret, body)
        headers["X-Optio-Signature-256"] = timestamped_signature(secret, body, timestamp=timestamp)
    return headers


def slack_signature_ok(
    secret: str,
    *,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: float,
    max_age_seconds: int,
) -> bool:
    """Slack's v0 scheme: `v0=` hex HMAC-SHA256 over `v0:<timestamp>:<body>`, fresh."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > max_age_seconds:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)

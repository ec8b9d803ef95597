"""Signatures of `POST /api/hooks/<path>` deliveries (docs/blueprints.md, "Webhooks").

The sender signs `<timestamp>.<delivery id>.<raw body>` with the trigger's secret, so
neither the time nor the id can be changed without the secret: a captured delivery
replayed later is stale, and replayed at once carries an id already seen.
"""

from __future__ import annotations

import hashlib
import hmac
import re

TIMESTAMP_HEADER = "X-Optio-Timestamp"
DELIVERY_HEADER = "X-Optio-Delivery"
SIGNATURE_HEADER = "X-Optio-Signature"
DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def sign(secret: str, *, timestamp: str, delivery: str, body: bytes) -> str:
    """The hex HMAC-SHA256 a sender puts in `X-Optio-Signature` (a `sha256=` prefix is ok)."""
    message = f"{timestamp}.{delivery}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_ok(secret: str, *, timestamp: str, delivery: str, body: bytes, given: str) -> bool:
    expected = sign(secret, timestamp=timestamp, delivery=delivery, body=body)
    return hmac.compare_digest(given.strip().removeprefix("sha256=").lower(), expected)

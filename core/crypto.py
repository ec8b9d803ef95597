"""AES-256-GCM for secrets at rest, bound to the row they belong to.

The associated data names the row (name, scope, workspace, user), so a ciphertext
copied onto another row fails to decrypt instead of handing out someone else's secret.
"""

from __future__ import annotations

import hashlib
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALG_AES_256_GCM_V1 = 1
NONCE_BYTES = 12
MIN_PASSPHRASE_LENGTH = 32
# Values people leave in example configs; refused whatever their length.
WEAK_KEYS = {"change-me-in-production", "changeme", "test", "secret", "password", "default"}
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")


class WeakKeyError(ValueError):
    """The configured encryption key is missing, a known placeholder or too short."""


class DecryptionError(Exception):
    """A ciphertext does not belong to this row or this key (the message never holds data)."""


def check_key(value: str | None) -> None:
    if not value:
        raise WeakKeyError("OPTIO_ENCRYPTION_KEY is not set")
    if value.strip().lower() in WEAK_KEYS or (
        not _HEX_KEY.match(value) and len(value) < MIN_PASSPHRASE_LENGTH
    ):
        raise WeakKeyError(
            "OPTIO_ENCRYPTION_KEY is too weak: use 64 hex characters "
            f"(openssl rand -hex 32) or a passphrase of at least {MIN_PASSPHRASE_LENGTH} characters"
        )


def derive_key(value: str | None) -> bytes:
    """64 hex characters are the raw key; any other strong passphrase is hashed to 32 bytes."""
    check_key(value)
    assert value is not None
    if _HEX_KEY.match(value):
        return bytes.fromhex(value)
    return hashlib.sha256(value.encode()).digest()


def associated_data(
    *, name: str, scope: str, workspace_id: str | None, user_id: str | None
) -> bytes:
    return f"{name}|{scope}|{workspace_id or 'global'}|{user_id or '-'}".encode()


def encrypt(key: bytes, plaintext: str, *, aad: bytes) -> tuple[bytes, bytes]:
    """Returns (nonce, ciphertext with the 16-byte tag appended)."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(key).encrypt(nonce, plaintext.encode(), aad)


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, *, aad: bytes) -> str:
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad).decode()
    except InvalidTag:
        # `from None`: the chained exception would carry nothing useful but noise.
        raise DecryptionError("secret does not decrypt with this key and row") from None

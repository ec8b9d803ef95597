"""AES-256-GCM with the row as associated data; weak keys refused; rotation."""

from __future__ import annotations

import pytest

from core.crypto import (
    DecryptionError,
    WeakKeyError,
    associated_data,
    check_key,
    decrypt,
    derive_key,
    encrypt,
)
from core.settings import Settings

KEY = derive_key("ab" * 32)


def aad(name: str = "GITHUB_TOKEN", scope: str = "global", ws: str = "w1") -> bytes:
    return associated_data(name=name, scope=scope, workspace_id=ws, user_id=None)


def test_round_trip_with_a_fresh_12_byte_nonce() -> None:
    first = encrypt(KEY, "ghp_value", aad=aad())
    second = encrypt(KEY, "ghp_value", aad=aad())
    assert len(first[0]) == 12 and first[0] != second[0] and first[1] != second[1]
    assert b"ghp_value" not in first[1]
    assert decrypt(KEY, *first, aad=aad()) == "ghp_value"


@pytest.mark.parametrize(
    "other",
    [aad(name="OTHER"), aad(scope="https://github.com/a/b"), aad(ws="w2"), aad(ws="")],
)
def test_a_ciphertext_moved_to_another_row_does_not_decrypt(other: bytes) -> None:
    nonce, ciphertext = encrypt(KEY, "ghp_value", aad=aad())
    with pytest.raises(DecryptionError) as caught:
        decrypt(KEY, nonce, ciphertext, aad=other)
    assert "ghp_value" not in str(caught.value)


def test_a_wrong_key_or_a_flipped_bit_fails() -> None:
    nonce, ciphertext = encrypt(KEY, "v", aad=aad())
    with pytest.raises(DecryptionError):
        decrypt(derive_key("cd" * 32), nonce, ciphertext, aad=aad())
    with pytest.raises(DecryptionError):
        decrypt(KEY, nonce, bytes([ciphertext[0] ^ 1]) + ciphertext[1:], aad=aad())


@pytest.mark.parametrize(
    "weak",
    [
        "change-me-in-production",
        "changeme",
        "test",
        "secret",
        "password",
        "default",
        "Secret",
        "short-passphrase",
        "x" * 31,
        "",
    ],
)
def test_weak_keys_are_refused(weak: str) -> None:
    with pytest.raises(WeakKeyError):
        check_key(weak)


def test_settings_refuse_a_weak_key_and_accept_strong_ones() -> None:
    with pytest.raises(ValueError, match="too weak"):
        Settings(encryption_key="changeme")
    assert Settings(encryption_key="f" * 64).encryption_key == "f" * 64
    phrase = "correct horse battery staple and more words"
    assert derive_key(phrase) != derive_key(phrase + "!")
    assert len(derive_key(phrase)) == 32 and derive_key("ab" * 32) == bytes.fromhex("ab" * 32)
    # Unset stays unset: `optio` generates one into the data dir.
    assert Settings(encryption_key="").encryption_key is None

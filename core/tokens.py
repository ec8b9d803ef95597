"""Credentials: random tokens shown once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

PAT_PREFIX = "optio_pat_"
RUN_TOKEN_PREFIX = "optio_run_"


def new_api_token() -> str:
    return PAT_PREFIX + secrets.token_hex(32)


def new_run_token() -> str:
    return RUN_TOKEN_PREFIX + secrets.token_hex(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: str) -> str:
    return token[:12]

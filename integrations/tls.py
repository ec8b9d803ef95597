"""One TLS context for Optio's outgoing HTTP clients.

Every new httpx client otherwise loads the CA bundle again, about 20 ms of CPU, and
forge clients are built per activity, runner clients per run. An SSLContext may be
shared between clients and threads; the runner fork server makes it once before forking.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()

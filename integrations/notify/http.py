"""One POST of a notification: SSRF-checked, no redirects, bounded time and answer."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from integrations.notify.ssrf import UnsafeUrlError, assert_safe_url
from integrations.tls import tls_context

USER_AGENT = "Optio-Webhooks/1.0"
RESPONSE_BODY_LIMIT = 2000


@dataclass
class Attempt:
    success: bool
    status_code: int | None
    response_body: str | None
    error: str | None
    duration_ms: int
    refused: bool = False


async def post_notification(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    allowlist: list[str],
) -> Attempt:
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        await assert_safe_url(url, allowlist=allowlist)
    except UnsafeUrlError as exc:
        return Attempt(False, None, None, str(exc), elapsed(), refused=True)
    try:
        # Redirects are not followed: a public URL must not bounce Optio into a private one.
        async with httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, verify=tls_context()
        ) as client:
            response = await client.post(
                url,
                content=body,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
            )
    except httpx.HTTPError as exc:
        return Attempt(False, None, None, f"{type(exc).__name__}: {exc}"[:500], elapsed())
    ok = 200 <= response.status_code < 300
    return Attempt(
        ok,
        response.status_code,
        response.text[:RESPONSE_BODY_LIMIT],
        None if ok else f"The receiver answered HTTP {response.status_code}",
        elapsed(),
    )

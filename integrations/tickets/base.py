"""What every ticket provider offers ticket sync, and the HTTP plumbing they share.

A provider lists actionable tickets (label `optio`, open), comments on one and completes
one (close it, or move it to the done status). Every request goes through `TicketHttp`,
which counts requests, waits out rate-limit answers (429 + Retry-After, and each
provider's own headers) up to a ceiling, and turns refused credentials into
`TicketAuthError`. Error messages never carry a credential or a response body's secrets.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlparse

import httpx

from integrations.tls import tls_context

DEFAULT_LABEL = "optio"
DEFAULT_MAX_PAGES = 20
# A request that keeps answering "rate limited" is given up after this many waits.
MAX_RATE_LIMIT_WAITS = 5

Pause = Callable[[float], Awaitable[None]]


class TicketError(Exception):
    """The provider answered with an error (or could not be reached)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TicketAuthError(TicketError):
    """The provider refused the credentials (401/403): no retry will help."""


class TicketRateLimited(TicketError):
    """The provider asks to wait longer than this run is willing to."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Rate limited by the provider for {retry_after:.0f}s", status=429)
        self.retry_after = retry_after


@dataclass(frozen=True)
class TicketComment:
    author: str
    body: str


@dataclass(frozen=True)
class Ticket:
    source: str
    # Stable per provider: `owner/repo#12` (GitHub, GitLab), `PROJ-7` (Jira), the issue
    # id (Linear), the page id (Notion).
    external_id: str
    title: str
    body: str
    url: str
    labels: list[str] = field(default_factory=list)
    comments: list[TicketComment] = field(default_factory=list)
    # The repository the ticket itself names (its forge repo, a `repo:owner/name` label).
    repo_hint: str | None = None
    state: str = "open"
    number: int | None = None
    author: str | None = None
    assignee: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class TicketClient(Protocol):
    source: str
    http: TicketHttp

    async def actionable(self, *, skip: Collection[str] = ()) -> list[Ticket]:
        """Open tickets with the label; those in `skip` (linked already) come without their
        text and comments, which saves a provider requests for every ticket it knows."""
        ...

    async def comment(
        self, external_id: str, *, body: str, key: str, known: list[TicketComment] | None = None
    ) -> None:
        """Once per `key`; `known` are the ticket's comments as just fetched (no refetch)."""
        ...

    async def complete(self, external_id: str, *, body: str, key: str) -> None: ...


def marker(key: str) -> str:
    """Written into Optio's comments so a retried write finds the one it already made."""
    return f"[optio:{key}]"


def text_marker_in(comments: list[TicketComment], key: str) -> bool:
    tag, html = marker(key), f"<!-- optio:{key} -->"
    return any(tag in c.body or html in c.body for c in comments)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def retry_after(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds to wait if this answer is a rate limit, else None."""
    headers = response.headers
    limited = response.status_code == 429 or (
        response.status_code == 403
        and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers)
    )
    if not limited:
        return None
    value = headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - (now or time.time()))
            except (TypeError, ValueError):
                return 60.0
    reset = headers.get("x-ratelimit-reset") or headers.get("ratelimit-reset")
    if reset and reset.isdigit():
        return max(0.0, int(reset) - (now or time.time()))
    # Linear: epoch milliseconds of the window's reset.
    reset_ms = headers.get("x-ratelimit-requests-reset")
    if reset_ms and reset_ms.isdigit():
        return max(0.0, int(reset_ms) / 1000 - (now or time.time()))
    return 60.0


class TicketHttp:
    """httpx with request counting, rate-limit waits and error mapping."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: dict[str, str],
        max_wait: float,
        pause: Pause | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            transport=transport,
            auth=auth,
            verify=tls_context(),
        )
        self.max_wait = max_wait
        self.pause = pause or _sleep
        self.requests = 0
        self.rate_limited = 0
        self.waited = 0.0

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        limited: Callable[[httpx.Response], float | None] = retry_after,
        check: bool = True,
    ) -> httpx.Response:
        """One request, waiting out rate limits; a non-2xx answer raises unless `check` is off."""
        for _ in range(MAX_RATE_LIMIT_WAITS + 1):
            self.requests += 1
            try:
                response = await self._http.request(method, path, json=json, params=params)
            except httpx.HTTPError as exc:
                raise TicketError(f"{method} {path}: {type(exc).__name__}") from exc
            wait = limited(response)
            if wait is None:
                if check:
                    raise_for(response)
                return response
            self.rate_limited += 1
            if wait > self.max_wait:
                raise TicketRateLimited(wait)
            self.waited += wait
            await self.pause(wait)
        raise TicketRateLimited(0)


def raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    where = f"{response.request.method} {response.request.url.path}"
    if response.status_code in (401, 403):
        raise TicketAuthError(
            f"{where}: {response.status_code} the provider refused the credentials",
            status=response.status_code,
        )
    raise TicketError(
        f"{where}: {response.status_code} {_message(response)[:300]}", status=response.status_code
    )


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text
    if isinstance(data, dict):
        for key in ("message", "errorMessages", "errors", "error"):
            if data.get(key):
                return str(data[key])
    return response.text


def check_host(url: str, *, allow_private: bool) -> str:
    """An http(s) URL whose host is not private, loopback or link-local (unless allowed).

    Names are resolved now: a name that points inside the network is refused like the
    address itself. Returns the URL without a trailing slash.
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("must be an http(s) URL with a host")
    if parsed.username or parsed.password:
        raise ValueError("must not carry credentials; they go in their own fields")
    if allow_private:
        return url.rstrip("/")
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise ValueError(f"host {parsed.hostname!r} does not resolve") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        ):
            raise ValueError(f"host {parsed.hostname!r} is a private or local address")
    return url.rstrip("/")

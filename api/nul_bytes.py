"""NUL bytes are refused (400) in every request's query and body, in one place.

No text field of ours has a use for one, PostgreSQL refuses them in text (a 500 later
instead of a 400 now) and C-string tools downstream would cut the value short. An ASGI
middleware sees every route, typed bodies and free-form ones (`metadata`, webhook
payloads) alike. The runner's own channel (/api/internal/) is exempt: agent output is
recorded as the agent wrote it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response

EXEMPT_PREFIXES = ("/api/internal/",)


class RefuseNulBytes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        where = _in_query(scope)
        if not _has_body(scope):
            # Most requests (every GET): nothing to read, the route reads the client's
            # own empty message, and no replay wraps `receive`.
            if where is None:
                await self.app(scope, receive, send)
            else:
                await _refuse(where, scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay(message, receive), send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        where = where or _in_body(body)
        if where is not None:
            await _refuse(where, scope, receive, send)
            return
        await self.app(scope, _replay({"type": "http.request", "body": body}, receive), send)


async def _refuse(where: str, scope: Scope, receive: Receive, send: Send) -> None:
    problem = "must not contain NUL (\\u0000) characters"
    response = error_response(
        400, f"Invalid fields: {where}", [{"field": where, "message": problem}]
    )
    await response(scope, receive, send)


def _has_body(scope: Scope) -> bool:
    """An HTTP/1.1 request has a body only with a Content-Length above 0 or a
    Transfer-Encoding (RFC 9112, 6.3)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


def _replay(first: Message, receive: Receive) -> Receive:
    """The body read here, then the client's own messages (a disconnect, for streams)."""
    pending = [first]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


def _in_query(scope: Scope) -> str | None:
    if "\x00" in scope["path"]:
        return "path"
    raw: bytes = scope.get("query_string", b"")
    if b"%00" not in raw and b"\x00" not in raw:
        return None
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "") or "query"
    return "query"


def _in_body(body: bytes) -> str | None:
    if b"\x00" in body:
        return "body"
    if b"\\u0000" not in body:
        return None  # the common case: no JSON escape of NUL anywhere
    try:
        data = json.loads(body)
    except ValueError:
        return None  # not JSON: the route answers for that
    return _find(data, "")


def _find(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here.replace("\x00", "")
            found = _find(item, here)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None

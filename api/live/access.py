"""Who may open a live stream: credentials of WebSockets, the owner's lookup, IP limits.

WebSockets authenticate with the `optio_session` cookie, or with the subprotocols
`optio-ws-v1, optio-auth-<token>` (browsers cannot set headers on a WebSocket; the
token is a PAT, a sign-in session or a single-use token from POST /api/auth/ws-token), or an
`Authorization: Bearer` header from other clients; never with a query-string token,
which ends up in proxy and access logs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from schemas.auth import Principal
from store.auth import resolve_credential
from store.ws_tokens import is_ws_token, redeem_ws_token

SESSION_COOKIE = "optio_session"  # the same cookie as api/deps.py
PROTOCOL = "optio-ws-v1"
AUTH_PREFIX = "optio-auth-"

# Close codes (docs/api.md#live-streams).
UNAUTHENTICATED = 4401
FORBIDDEN = 4403
NOT_FOUND = 4404
SLOW_CLIENT = 4408
TOO_LARGE = 4413
TOO_MANY = 4429


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class WsCredential:
    token: str
    from_cookie: bool


def ws_credential(conn: HTTPConnection) -> WsCredential:
    if "token" in conn.query_params:
        raise Refused(
            UNAUTHENTICATED,
            "Tokens in the query string are refused: use the optio_session cookie or the "
            f"subprotocols '{PROTOCOL}, {AUTH_PREFIX}<token>'",
        )
    for protocol in conn.scope.get("subprotocols") or ():
        if protocol.startswith(AUTH_PREFIX) and len(protocol) > len(AUTH_PREFIX):
            return WsCredential(protocol[len(AUTH_PREFIX) :], from_cookie=False)
    scheme, _, value = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return WsCredential(value.strip(), from_cookie=False)
    cookie = conn.cookies.get(SESSION_COOKIE)
    if cookie:
        return WsCredential(cookie, from_cookie=True)
    raise Refused(
        UNAUTHENTICATED,
        f"Authentication required: the optio_session cookie or '{PROTOCOL}, {AUTH_PREFIX}<token>'",
    )


def check_origin(conn: HTTPConnection, *, allowed: tuple[str | None, ...]) -> None:
    """A cookie rides along with any page's WebSocket: only our own pages may use it."""
    origin = conn.headers.get("origin")
    if not origin:
        return  # not a browser
    host = urlsplit(origin).netloc
    ours = {conn.headers.get("host", "")} | {urlsplit(u).netloc for u in allowed if u}
    if host not in ours:
        raise Refused(FORBIDDEN, "Cross-origin WebSocket with a session cookie refused")


async def ws_principal(
    conn: HTTPConnection,
    sessions: async_sessionmaker[AsyncSession],
    *,
    allowed_origins: tuple[str | None, ...],
) -> Principal:
    credential = ws_credential(conn)
    if credential.from_cookie:
        check_origin(conn, allowed=allowed_origins)
    requested = conn.headers.get("x-workspace-id") or conn.cookies.get("optio_workspace")
    async with sessions() as session, session.begin():
        if is_ws_token(credential.token):
            principal = await redeem_ws_token(session, token=credential.token)
        else:
            principal = await resolve_credential(
                session, token=credential.token, requested_workspace_id=requested
            )
    if principal is None:
        raise Refused(UNAUTHENTICATED, "Invalid or expired credential")
    return principal


def offered_protocol(conn: HTTPConnection) -> str | None:
    """The subprotocol to select: a browser that offered some closes a socket without one."""
    return PROTOCOL if PROTOCOL in (conn.scope.get("subprotocols") or ()) else None


@dataclass
class ConnectionLimit:
    """Open live streams per client IP, in this API process."""

    per_ip: int
    open: Counter[str] = field(default_factory=Counter)

    def acquire(self, conn: HTTPConnection) -> str:
        ip = conn.client.host if conn.client else "unknown"
        if self.open[ip] >= self.per_ip:
            raise Refused(TOO_MANY, f"More than {self.per_ip} live connections from {ip}")
        self.open[ip] += 1
        return ip

    def release(self, ip: str) -> None:
        self.open[ip] -= 1
        if self.open[ip] <= 0:
            del self.open[ip]

"""Dependencies: the session, the app state and the authenticated principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.roles import RANK, allows, is_public, minimum_role
from api.state import AppState
from core.errors import ForbiddenError, NotFoundError, UnauthorizedError
from core.tokens import hash_token
from schemas.auth import Principal, Role
from store import auth_cache
from store.auth import resolve_credential_until

SESSION_COOKIE = "optio_session"
ROLE_RANK = RANK


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.optio
    return state


async def get_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread round
    # trip on every request for an attribute read.
    return app_state(request)


StateDep = Annotated[AppState, Depends(get_state)]

# The dependencies below read the state from the request themselves rather than through
# `StateDep`: FastAPI solves a sub-dependency again for every dependency that names it
# (the cache saves only the call), a tenth of a small read's CPU (docs/benchmarks.md).


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with app_state(request).sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_reader(request: Request) -> AsyncIterator[AsyncConnection]:
    """A pooled connection, for GET routes that read rows as dicts (store/row_dicts.py):
    no ORM session, unit of work or identity map around a Core statement, a third of
    the CPU of a one-row read. A route that needs an ORM object on a rare path opens
    `store.db.orm_session(connection)` on it."""
    async with app_state(request).engine.connect() as connection:
        yield connection


ReadDep = Annotated[AsyncConnection, Depends(get_reader)]


def bearer_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _credential(request: Request) -> str | None:
    return (
        bearer_token(request)
        or request.cookies.get(SESSION_COOKIE)
        or request.query_params.get("token")
    )


request_credential = _credential


async def get_principal(request: Request) -> Principal:
    token = _credential(request)
    if not token:
        raise UnauthorizedError(
            "Authentication required: send 'Authorization: Bearer <token>', "
            "the optio_session cookie, or ?token="
        )
    # A route about one workspace (/api/workspaces/{workspace_id}/...) acts in that one.
    in_path = request.path_params.get("workspace_id")
    requested = (
        in_path or request.headers.get("x-workspace-id") or request.cookies.get("optio_workspace")
    )
    principal = await _resolve(app_state(request), digest=hash_token(token), requested=requested)
    if principal is None:
        raise UnauthorizedError("Invalid or expired credential")
    if in_path is not None and principal.workspace_id != in_path:
        raise NotFoundError("Workspace not found")
    _check_role(request, principal)
    return principal


async def _resolve(state: AppState, *, digest: str, requested: str | None) -> Principal | None:
    """From the last few seconds' answers when nothing has changed (store/auth_cache.py),
    else from the database."""
    principal = auth_cache.lookup(digest, requested)
    if principal is not None:
        return principal
    generation = auth_cache.generation()
    async with state.sessions() as session, session.begin():
        found = await resolve_credential_until(
            session, digest=digest, requested_workspace_id=requested
        )
    if found is None:
        return None
    principal, expires_at = found
    auth_cache.remember(digest, requested, principal, expires_at=expires_at, generation=generation)
    return principal


def _check_role(request: Request, principal: Principal) -> None:
    """Every authenticated route is guarded here, by the policy in api/roles.py."""
    route = request.scope.get("route")
    minimum = minimum_role(request.method, getattr(route, "path", request.url.path))
    if not allows(principal.role, minimum):
        raise ForbiddenError(f"This action needs the {minimum} role in this workspace")


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def guard_routes(router: APIRouter) -> None:
    """Authenticate and role-check every route of the router that api/roles.py does not
    list as public, so a handler that forgets to ask for the principal is still guarded.
    Called before the app includes the router (FastAPI copies route dependencies then);
    the principal is resolved once per request (dependency cache). A route whose first
    dependency FastAPI calls is already `get_principal` (`CurrentPrincipal` or a
    `require_role` first) is left as it is: the guard would be resolved first and then
    found in the cache, a second pass over the dependency tree for nothing."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or getattr(route, "_optio_guarded", False):
            continue
        public = all(is_public(method, route.path) for method in route.methods or ())
        if not public and _first_call(route.dependant) is not get_principal:
            route.dependencies.insert(0, Depends(get_principal))
        route._optio_guarded = True  # type: ignore[attr-defined]


def _first_call(dependant: Dependant) -> Any:
    """What FastAPI calls first for this dependant: it solves sub-dependencies depth
    first, in order, each before the dependency that names it."""
    while dependant.dependencies:
        dependant = dependant.dependencies[0]
    return dependant.call


def require_role(minimum: Role) -> Any:
    async def check(principal: CurrentPrincipal) -> Principal:
        if ROLE_RANK[principal.role] < ROLE_RANK[minimum]:
            raise ForbiddenError(f"This action needs the {minimum} role in this workspace")
        return principal

    return Depends(check)

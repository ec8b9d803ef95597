"""The app's routes as one flat table, each route rejecting a path by its literal prefix.

FastAPI (0.165) keeps an included router as a wrapper that matches a request against
every route of the router, twice (once to find the router, once to pick its route), with
scope bookkeeping around each candidate: with 30 routers and 150 routes that was a third
of the CPU of a small read (`GET /api/repos`, docs/benchmarks.md). Here each route of an
included router is rebuilt on the app itself, with what `include_router` would have
given it (its dependencies, the guard of api/deps.py among them, its responses, the
app's dependency overrides), in the same order, so the first full match is the same
route as before; and a route whose path does not start with the literal part of its
template (`/api/tasks/` for `/api/tasks/{task_id}`) answers "no match" after one string
comparison instead of a regular expression and FastAPI's bookkeeping.

Call it after every router's routes are complete (guard_routes, declare_router_errors):
a route is built here once, from what its router holds then.

Building a route (its dependant, its pydantic request and response fields) costs a few
milliseconds, about a second for the whole table: it is done once per process. A later
app (the test suite makes one per test) gets copies wired to its own dependency
overrides, which is all that differs between two apps' routes.

Even so, the table was still walked route by route (some 90 comparisons for
`/api/repos`, a sixth of its CPU): `index_routes` puts in front of the routes an index
by their first two path segments that finds the same route among a handful.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import (
    APIRoute,
    APIWebSocketRoute,
    get_websocket_app,
    request_response,
    websocket_session,
    wrap_app_with_body_limit,
)
from fastapi.telemetry._api import _route_selected
from starlette._utils import get_route_path
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send


def literal_prefix(path: str) -> str:
    """The part of a route's template every matching path starts with."""
    return path.split("{", 1)[0]


class PrefixedRoute(APIRoute):
    """An APIRoute that tells "not this route" by its literal prefix first."""

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.literal_prefix = literal_prefix(self.path)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not get_route_path(scope).startswith(self.literal_prefix):
            return Match.NONE, {}
        return super().matches(scope)


class PrefixedWebSocketRoute(APIWebSocketRoute):
    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.literal_prefix = literal_prefix(self.path)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "websocket" or not get_route_path(scope).startswith(
            self.literal_prefix
        ):
            return Match.NONE, {}
        return super().matches(scope)


def add_flat(app: FastAPI, router: APIRouter) -> None:
    """`app.include_router(router)`, as routes of the app's own table."""
    if router.prefix or router.on_startup or router.on_shutdown:
        raise RuntimeError("add_flat takes routers without a prefix or event handlers")
    for route in router.routes:
        app.router.routes.append(_rebuilt(app, route))


# id of a router's route -> (that route, what this process built from it first).
_built: dict[int, tuple[BaseRoute, BaseRoute]] = {}


def _rebuilt(app: FastAPI, route: BaseRoute) -> BaseRoute:
    overrides = app.router.dependency_overrides_provider
    first = _built.get(id(route))
    if first is not None and first[0] is route:
        return _rewired(first[1], overrides)
    built = _build(route, overrides)
    _built[id(route)] = (route, built)
    return built


def _rewired(built: BaseRoute, overrides: Any) -> BaseRoute:
    """A copy of a built route answering with another app's dependency overrides; the
    last step of APIRoute's and APIWebSocketRoute's constructors, redone for the copy."""
    clone = copy.copy(built)
    if isinstance(clone, APIRoute):
        clone.dependency_overrides_provider = overrides
        clone.app = wrap_app_with_body_limit(
            request_response(clone.get_route_handler()), clone.max_body_size
        )
    elif isinstance(clone, APIWebSocketRoute):
        clone.app = websocket_session(
            get_websocket_app(
                dependant=clone.dependant,
                dependency_overrides_provider=overrides,
                embed_body_fields=clone._embed_body_fields,
            )
        )
    return clone


def _build(route: BaseRoute, overrides: Any) -> BaseRoute:
    if isinstance(route, APIRoute):
        return PrefixedRoute(
            route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=list(route.tags),
            dependencies=list(route.dependencies),
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=dict(route.responses),
            deprecated=route.deprecated,
            name=route.name,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=route.response_class,
            dependency_overrides_provider=overrides,
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
            strict_content_type=route.strict_content_type,
            max_body_size=route.max_body_size,
            form_limits=route.form_limits,
        )
    if isinstance(route, APIWebSocketRoute):
        return PrefixedWebSocketRoute(
            route.path,
            route.endpoint,
            name=route.name,
            dependencies=list(route.dependencies),
            dependency_overrides_provider=overrides,
        )
    raise RuntimeError(f"add_flat does not rebuild {type(route).__name__} ({route!r})")


def _first_segments(path: str) -> tuple[str, ...]:
    """The first two segments of a path (`("api", "tasks")` for `/api/tasks/1/logs`)."""
    return tuple(path.split("/", 3)[1:3])


def _key(route: PrefixedRoute | PrefixedWebSocketRoute) -> tuple[str, ...] | None:
    """The first segments every path this route matches has; None when a parameter is
    among them (the route is then a candidate for every path)."""
    segments = _first_segments(route.path)
    return None if any("{" in segment for segment in segments) else segments


class RouteIndex(BaseRoute):
    """Finds, among a run of consecutive routes of the table, the first that fully
    matches a request, looking only at the routes its first two path segments allow (a
    handful instead of 150). It sits in the table in front of that run, which stays in
    place behind it: a request it does not fully match (a 404, a 405, a later route) is
    matched by the table as before, so the answer is the same route either way."""

    def __init__(self, routes: list[PrefixedRoute | PrefixedWebSocketRoute]) -> None:
        keyed: dict[tuple[str, ...], list[int]] = {}
        anywhere: list[int] = []
        for position, route in enumerate(routes):
            key = _key(route)
            if key is None:
                anywhere.append(position)
            else:
                keyed.setdefault(key, []).append(position)
        # Each key's candidates in table order, the routes with a parameter among them.
        self._anywhere = [routes[i] for i in anywhere]
        self._by_key = {
            key: [routes[i] for i in sorted(positions + anywhere)]
            for key, positions in keyed.items()
        }

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        key = _first_segments(get_route_path(scope))
        for route in self._by_key.get(key, self._anywhere):
            match, child_scope = route.matches(scope)
            if match == Match.FULL:
                return match, child_scope  # with "route": the route itself (FastAPI's)
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = scope["route"]
        _route_selected(scope=scope, path=route.path_format)  # what the table does
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # the routes behind it answer for themselves


def index_routes(app: FastAPI) -> None:
    """Put a RouteIndex in front of each run of routes add_flat built. Call it once the
    table is complete."""
    table = app.router.routes
    runs: list[tuple[int, list[PrefixedRoute | PrefixedWebSocketRoute]]] = []
    for position, route in enumerate(table):
        if isinstance(route, PrefixedRoute | PrefixedWebSocketRoute):
            if runs and runs[-1][0] + len(runs[-1][1]) == position:
                runs[-1][1].append(route)
            else:
                runs.append((position, [route]))
    for start, run in reversed(runs):
        table.insert(start, RouteIndex(run))

"""The route index (api/route_table.py) picks the route the table's own walk would, and
every non-public route resolves the principal before anything else (api/deps.py)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute, Match

from api.deps import _first_call, get_principal
from api.main import create_app
from api.roles import is_public
from api.route_table import RouteIndex


def _walk(routes: list[BaseRoute], scope: dict[str, Any]) -> BaseRoute | None:
    """The first route that fully matches, as Starlette's router looks for it."""
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.FULL:
            return child.get("route", route)
    return None


def _scope(kind: str, method: str, path: str) -> dict[str, Any]:
    return {"type": kind, "method": method, "path": path, "root_path": "", "path_params": {}}


def _paths(template: str) -> list[str]:
    """The template with each parameter filled, plus near misses."""
    filled = re.sub(r"\{[^}]+\}", "x1", template)
    return [filled, filled + "/", filled + "/extra", filled.rstrip("/") + "x"]


def test_the_index_finds_the_route_the_table_walk_finds() -> None:
    app = create_app()
    table = app.router.routes
    indexes = [route for route in table if isinstance(route, RouteIndex)]
    assert indexes, "create_app puts an index in front of the routes"
    plain = [route for route in table if not isinstance(route, RouteIndex)]
    checked = 0
    for route in plain:
        if isinstance(route, APIRoute):
            kinds = [("http", method) for method in sorted(route.methods or ())]
        elif isinstance(route, APIWebSocketRoute):
            kinds = [("websocket", "GET")]
        else:
            continue
        for kind, method in kinds:
            for path in _paths(route.path):
                scope = _scope(kind, method, path)
                assert _walk(table, scope) is _walk(plain, scope), f"{method} {path}"
                checked += 1
    assert checked > 400
    for path in ["/", "/login", "/dashboard/x", "/api", "/api/", "/nope/x", "/api/nope"]:
        scope = _scope("http", "GET", path)
        assert _walk(table, scope) is _walk(plain, scope), path


def test_every_private_route_resolves_the_principal_first() -> None:
    routes = [route for route in create_app().routes if isinstance(route, APIRoute)]
    assert len(routes) > 100
    for route in routes:
        if all(is_public(method, route.path) for method in route.methods or ()):
            continue
        assert _first_call(route.dependant) is get_principal, route.path

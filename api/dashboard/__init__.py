"""The web dashboard: plain files served by the API itself at `/` (docs/dashboard.md).

The page is one HTML shell plus ES modules, no build step. Routing happens in the
browser after `#`, so the only server paths it claims are `/`, `/login` and
`/dashboard/...`: nothing under `/api`, `/ws`, `/hooks` or `/docs` is shadowed.
"""

from __future__ import annotations

import html
import os
from os import PathLike
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from api.deps import StateDep

STATIC = Path(__file__).parent / "static"
ASSETS_PREFIX = "/dashboard"
# Revalidated on every load (the ETag makes that a 304): a new release is picked up at
# once, and nothing stale mixes old modules with new ones.
REVALIDATE = "no-cache"

router = APIRouter(include_in_schema=False)


class DashboardAssets(StaticFiles):
    """Static files with explicit cache and content-type headers."""

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = REVALIDATE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _shell(request: Request, temporal_ui: str, namespace: str) -> HTMLResponse:
    page = (STATIC / "index.html").read_text()
    page = page.replace("{{TEMPORAL_UI}}", html.escape(temporal_ui, quote=True))
    page = page.replace("{{TEMPORAL_NAMESPACE}}", html.escape(namespace, quote=True))
    return HTMLResponse(
        page,
        headers={
            "Cache-Control": REVALIDATE,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            # Scripts only from this origin: an injected <script> or inline handler won't run.
            "Content-Security-Policy": (
                "default-src 'self'; script-src 'self'; style-src 'self'; "
                "img-src 'self' data: https:; connect-src 'self'; frame-ancestors 'none'; "
                "base-uri 'none'; form-action 'self'"
            ),
        },
    )


@router.get("/", response_class=HTMLResponse)
@router.get("/login", response_class=HTMLResponse)
async def shell(request: Request, state: StateDep) -> HTMLResponse:
    settings = state.settings
    temporal_ui = (
        f"http://{request.url.hostname or '127.0.0.1'}:{settings.temporal_ui_port}"
        if settings.temporal_address is None
        else ""
    )
    return _shell(request, temporal_ui, settings.temporal_namespace)


def mount_dashboard(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS_PREFIX, DashboardAssets(directory=STATIC), name="dashboard")

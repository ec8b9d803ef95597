"""The dashboard is served by the API at / without shadowing any API path."""

from __future__ import annotations

import pytest

from tests.conftest import Optio

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("sqlite")


async def test_the_shell_and_assets_with_their_headers(api_only: Optio) -> None:
    shell = await api_only.anon.get("/")
    assert shell.status_code == 200 and shell.headers["content-type"].startswith("text/html")
    assert shell.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in shell.headers["content-security-policy"]
    assert '<script type="module" src="/dashboard/app.js">' in shell.text
    assert "{{" not in shell.text  # the Temporal UI address was filled in
    assert (await api_only.anon.get("/login")).text == shell.text

    script = await api_only.anon.get("/dashboard/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert script.headers["cache-control"] == "no-cache" and script.headers["etag"]
    again = await api_only.anon.get(
        "/dashboard/app.js", headers={"If-None-Match": script.headers["etag"]}
    )
    assert again.status_code == 304
    assert (await api_only.anon.get("/dashboard/nope.js")).status_code == 404
    assert (await api_only.anon.get("/dashboard/../core/settings.py")).status_code == 404


async def test_api_paths_are_not_shadowed(api_only: Optio) -> None:
    assert (await api_only.anon.get("/api/health")).json()["checks"]
    assert (await api_only.anon.get("/api/tasks")).status_code == 401  # auth, not the page
    assert (await api_only.anon.get("/api/nothing-here")).status_code == 404
    assert (await api_only.anon.get("/docs")).status_code == 200
    assert "/" not in (await api_only.anon.get("/openapi.json")).json()["paths"]

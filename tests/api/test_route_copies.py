"""The flat route table (api/route_table.py) is built once per process: each later app
gets copies of the routes, and they must answer with that app's dependency overrides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from fastapi import FastAPI

from api.deps import get_principal
from api.main import create_app
from core.errors import ForbiddenError
from core.settings import Settings
from schemas.auth import Principal


def refusing(who: str) -> Callable[[], Awaitable[Principal]]:
    async def principal() -> Principal:
        raise ForbiddenError(f"overridden by {who}")

    return principal


async def answer(app: FastAPI) -> tuple[int, str]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.get("/api/repos", headers={"Authorization": "Bearer x"})
    return response.status_code, response.text


async def test_each_app_answers_with_its_own_dependency_overrides(tmp_path: Path) -> None:
    first, second, third = (create_app(Settings(data_dir=tmp_path)) for _ in range(3))
    second.dependency_overrides[get_principal] = refusing("the second")
    third.dependency_overrides[get_principal] = refusing("the third")

    assert (await answer(second))[0] == 403 and "the second" in (await answer(second))[1]
    assert (await answer(third))[0] == 403 and "the third" in (await answer(third))[1]
    # The first app has no override: it reaches its own (unstarted) state, not a 403.
    status, text = await answer(first)
    assert status != 403 and "overridden" not in text
    # No two apps share a route object.
    assert not {id(r) for r in first.routes} & {id(r) for r in second.routes}

"""People and workspaces for the identity tests, made directly in the database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from store.auth import create_api_token
from store.db import create_engine, session_factory, transaction
from store.models import User, WorkspaceMember
from store.workspaces import personal_workspace
from tests.conftest import Optio


@dataclass
class Person:
    user_id: str
    token: str
    workspace_id: str
    client: httpx.AsyncClient


async def add_person(
    optio: Optio, name: str, *, member_of: str | None = None, role: str = "member"
) -> tuple[str, str, str]:
    """(user id, PAT, workspace id): in `member_of` with `role`, else in their own workspace."""
    engine = create_engine(optio.settings.database_url_resolved)
    try:
        async with transaction(session_factory(engine)) as session:
            user = User(provider="test", external_id=uuid.uuid4().hex, display_name=name)
            session.add(user)
            await session.flush()
            if member_of is None:
                workspace = await personal_workspace(session, user=user)
                workspace_id = workspace.id
            else:
                session.add(WorkspaceMember(workspace_id=member_of, user_id=user.id, role=role))
                user.default_workspace_id = workspace_id = member_of
            token = await create_api_token(session, user_id=user.id, name="test")
            return user.id, token, workspace_id
    finally:
        await engine.dispose()


@pytest.fixture
async def people(api_only: Optio) -> AsyncIterator[Callable[..., Any]]:
    clients: list[httpx.AsyncClient] = []

    async def make(name: str, *, member_of: str | None = None, role: str = "member") -> Person:
        user_id, token, workspace_id = await add_person(
            api_only, name, member_of=member_of, role=role
        )
        client = httpx.AsyncClient(
            base_url=str(api_only.client.base_url),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        clients.append(client)
        return Person(user_id=user_id, token=token, workspace_id=workspace_id, client=client)

    yield make
    for client in clients:
        await client.aclose()

"""The API remembers resolved credentials for a few seconds (store/auth_cache.py): a
revocation or a role change through the API must still count from the next request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from schemas.auth import Principal
from store import auth_cache
from store.types import utcnow
from tests.conftest import Optio


async def test_a_revoked_key_is_refused_on_the_next_request(api_only: Optio) -> None:
    created = (await api_only.client.post("/api/auth/api-keys", json={"name": "ci"})).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    for _ in range(2):  # the second answer comes from the cache
        assert (await api_only.anon.get("/api/tasks", headers=headers)).status_code == 200
    revoked = await api_only.client.delete(f"/api/auth/api-keys/{created['tokenId']}")
    assert revoked.status_code == 200
    refused = await api_only.anon.get("/api/tasks", headers=headers)
    assert refused.status_code == 401, refused.text


async def test_a_new_role_and_a_removal_count_from_the_next_request(
    api_only: Optio, people: Callable[..., Any]
) -> None:
    bob = await people("Bob", member_of=api_only.workspace_id, role="member")
    here = {"X-Workspace-Id": api_only.workspace_id}
    for _ in range(2):  # the second answer comes from the cache
        # A member may create tasks: refused for the empty body, not for the role.
        assert (await bob.client.post("/api/tasks", json={}, headers=here)).status_code == 400
    member = f"/api/workspaces/{api_only.workspace_id}/members/{bob.user_id}"
    assert (await api_only.client.patch(member, json={"role": "viewer"})).status_code == 200
    assert (await bob.client.post("/api/tasks", json={}, headers=here)).status_code == 403
    assert (await api_only.client.delete(member)).status_code == 204
    # That was Bob's only workspace: his token no longer resolves to anything.
    listed = await bob.client.get(f"/api/workspaces/{api_only.workspace_id}/members")
    assert listed.status_code == 401, listed.text


def test_an_entry_ends_with_its_credential_or_its_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    principal = Principal(user_id="u", workspace_id="w", role="admin", display_name="U")
    generation = auth_cache.generation()
    auth_cache.remember("d1", None, principal, expires_at=None, generation=generation)
    assert auth_cache.lookup("d1", None) == principal
    assert auth_cache.lookup("d1", "another-workspace") is None
    past = utcnow() - timedelta(seconds=1)
    auth_cache.remember("d2", None, principal, expires_at=past, generation=generation)
    assert auth_cache.lookup("d2", None) is None
    auth_cache.remember("d3", None, principal, expires_at=None, generation=generation - 1)
    assert auth_cache.lookup("d3", None) is None  # resolved before a write: never used
    monkeypatch.setattr(auth_cache, "TTL_S", 0.0)
    auth_cache.remember("d4", None, principal, expires_at=None, generation=generation)
    assert auth_cache.lookup("d4", None) is None
    auth_cache.forget_all()
    assert auth_cache.lookup("d1", None) is None

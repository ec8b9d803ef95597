"""Workspaces, members, roles, the active workspace, and personal access tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core.tokens import hash_token
from store.db import create_engine, session_factory, transaction
from store.models import ApiKey
from tests.conftest import Optio
from tests.identity.conftest import Person


async def test_workspaces_and_members(api_only: Optio, people: Callable[..., Any]) -> None:
    a = api_only.client
    created = await a.post("/api/workspaces", json={"name": "Platform", "slug": "platform"})
    assert created.status_code == 201 and created.json()["role"] == "admin"
    ws = created.json()["workspace"]["id"]
    dup = await a.post("/api/workspaces", json={"name": "Again", "slug": "platform"})
    assert dup.status_code == 409
    bad = await a.post("/api/workspaces", json={"name": "x", "slug": "Not A Slug"})
    assert bad.status_code == 400
    listed = (await a.get("/api/workspaces")).json()
    assert {w["slug"] for w in listed["workspaces"]} == {"default", "platform"}
    assert listed["activeWorkspaceId"] == api_only.workspace_id

    patched = await a.patch(f"/api/workspaces/{ws}", json={"description": "infra"})
    assert patched.json()["workspace"]["description"] == "infra"

    bob: Person = await people("Bob")
    added = await a.post(f"/api/workspaces/{ws}/members", json={"userId": bob.user_id})
    assert added.status_code == 201
    twice = await a.post(f"/api/workspaces/{ws}/members", json={"userId": bob.user_id})
    assert twice.status_code == 409
    nobody = await a.post(f"/api/workspaces/{ws}/members", json={"userId": "no-such-user"})
    assert nobody.status_code == 404
    members = (await a.get(f"/api/workspaces/{ws}/members")).json()["members"]
    assert {(m["displayName"], m["role"]) for m in members} == {
        ("Local admin", "admin"),
        ("Bob", "member"),
    }
    # Bob, a member there, acts in it by header; cannot manage it.
    hdr = {"x-workspace-id": ws}
    assert (await bob.client.get("/api/tasks", headers=hdr)).status_code == 200
    me = (await bob.client.get("/api/auth/me", headers=hdr)).json()["user"]
    assert me["workspaceId"] == ws and me["workspaceRole"] == "member"
    assert (await bob.client.patch(f"/api/workspaces/{ws}", json={"name": "x"})).status_code == 403
    assert (
        await bob.client.post("/api/secrets", json={"name": "X", "value": "v"}, headers=hdr)
    ).status_code == 403

    # Last admin: cannot be demoted or removed; with a second admin, can.
    admin_id = api_only.user_id
    last = await a.delete(f"/api/workspaces/{ws}/members/{admin_id}")
    assert last.status_code == 409
    demote = await a.patch(f"/api/workspaces/{ws}/members/{admin_id}", json={"role": "viewer"})
    assert demote.status_code == 409
    promoted = await a.patch(f"/api/workspaces/{ws}/members/{bob.user_id}", json={"role": "admin"})
    assert promoted.status_code == 200
    assert (
        await bob.client.patch(f"/api/workspaces/{ws}", json={"name": "Plat"})
    ).status_code == 200
    assert (await a.delete(f"/api/workspaces/{ws}/members/{admin_id}")).status_code == 204
    # Now A is not a member: the workspace is a 404 to them, not a 403.
    assert (await a.get(f"/api/workspaces/{ws}")).status_code == 404
    assert (await a.get(f"/api/workspaces/{ws}/members")).status_code == 404


async def test_switching_the_active_workspace(api_only: Optio) -> None:
    a = api_only.client
    ws = (await a.post("/api/workspaces", json={"name": "Two", "slug": "two"})).json()
    ws_id = ws["workspace"]["id"]
    assert (await a.post(f"/api/workspaces/{ws_id}/switch")).json()["ok"] is True
    assert (await a.get("/api/auth/me")).json()["user"]["workspaceId"] == ws_id
    # A header naming a workspace one is not in falls back to the default, silently.
    fallback = await a.get("/api/auth/me", headers={"x-workspace-id": "not-mine"})
    assert fallback.json()["user"]["workspaceId"] == ws_id
    assert (await a.post("/api/workspaces/not-mine/switch")).status_code == 404


async def test_personal_access_tokens(api_only: Optio, people: Callable[..., Any]) -> None:
    a = api_only.client
    created = await a.post("/api/auth/api-keys", json={"name": "ci"})
    assert created.status_code == 201
    body = created.json()
    token = body["token"]
    assert token.startswith("optio_pat_") and body["prefix"] == token[:12]
    listed = (await a.get("/api/auth/api-keys")).json()["keys"]
    assert token not in str(listed) and {k["name"] for k in listed} >= {"ci"}
    engine = create_engine(api_only.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        row = (
            await session.execute(select(ApiKey).where(ApiKey.id == body["tokenId"]))
        ).scalar_one()
        assert row.hashed_key == hash_token(token)
    await engine.dispose()
    headers = {"Authorization": f"Bearer {token}"}
    assert (await api_only.anon.get("/api/tasks", headers=headers)).status_code == 200
    # Someone else cannot revoke it; its owner can.
    other: Person = await people("Other")
    assert (await other.client.delete(f"/api/auth/api-keys/{body['tokenId']}")).status_code == 404
    assert (await a.delete(f"/api/auth/api-keys/{body['tokenId']}")).json() == {"ok": True}
    assert (await api_only.anon.get("/api/tasks", headers=headers)).status_code == 401
    # Expiry: a key cannot be made already expired; one whose time has come is refused.
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = await a.post("/api/auth/api-keys", json={"name": "old", "expiresAt": past})
    assert refused.status_code == 400, refused.text
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    expiring = (await a.post("/api/auth/api-keys", json={"name": "old", "expiresAt": soon})).json()
    stale = {"Authorization": f"Bearer {expiring['token']}"}
    assert (await api_only.anon.get("/api/tasks", headers=stale)).status_code == 200
    engine = create_engine(api_only.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        row = await session.get(ApiKey, expiring["tokenId"])
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    await engine.dispose()
    assert (await api_only.anon.get("/api/tasks", headers=stale)).status_code == 401


async def test_credential_status_never_shows_values(api_only: Optio) -> None:
    secret = "sk-ant-not-a-real-key-1234567890"
    await api_only.client.post("/api/secrets", json={"name": "ANTHROPIC_API_KEY", "value": secret})
    status = await api_only.client.get("/api/auth/status")
    assert status.status_code == 200 and secret not in status.text
    assert status.json()["agents"]["claude-code"] == {"configured": True, "source": "secret"}
    assert status.json()["subscription"]["available"] is True
    usage = await api_only.client.get("/api/auth/usage")
    assert usage.status_code == 200 and secret not in usage.text
    setup = (await api_only.anon.get("/api/setup/status")).json()
    assert setup["steps"]["anyAgentKey"]["done"] is True
    assert setup["steps"]["gitToken"]["done"] is False and setup["isSetUp"] is False

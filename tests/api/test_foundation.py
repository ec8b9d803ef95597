"""Health, auth, the error envelope and workspace scoping."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core.tokens import hash_token, new_api_token
from store.db import create_engine, session_factory, transaction
from store.models import ApiKey, AuthSession, Repo, User, Workspace, WorkspaceMember
from store.types import utcnow
from tests.conftest import Optio


async def test_health_reports_database_and_temporal(api_only: Optio) -> None:
    response = await api_only.anon.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"healthy": True, "checks": {"database": "ok", "temporal": "ok"}}


async def test_every_credential_form_is_accepted(api_only: Optio) -> None:
    assert (await api_only.client.get("/api/tasks")).json() == {
        "tasks": [],
        "limit": 50,
        "offset": 0,
    }
    query = await api_only.anon.get("/api/tasks", params={"token": api_only.token})
    assert query.status_code == 200
    cookie = await api_only.anon.get("/api/tasks", cookies={"optio_session": api_only.token})
    assert cookie.status_code == 200


async def test_missing_or_wrong_credential_is_401(api_only: Optio) -> None:
    missing = await api_only.anon.get("/api/tasks")
    assert missing.status_code == 401
    assert "Authentication required" in missing.json()["error"]
    wrong = await api_only.anon.get(
        "/api/tasks", headers={"Authorization": "Bearer optio_pat_nope"}
    )
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "Invalid or expired credential"}


async def test_tokens_are_stored_hashed_and_revocation_works(api_only: Optio) -> None:
    engine = create_engine(api_only.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        keys = list((await session.execute(select(ApiKey))).scalars())
        assert [k.hashed_key for k in keys] == [hash_token(api_only.token)]
        assert api_only.token not in {k.hashed_key for k in keys}
        keys[0].revoked_at = utcnow()
    await engine.dispose()
    assert (await api_only.client.get("/api/tasks")).status_code == 401


async def test_expired_session_cookie_is_refused(api_only: Optio) -> None:
    token = new_api_token()
    engine = create_engine(api_only.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        session.add(
            AuthSession(
                user_id=api_only.user_id,
                token_hash=hash_token(token),
                expires_at=utcnow() - timedelta(seconds=1),
            )
        )
    await engine.dispose()
    response = await api_only.anon.get("/api/auth/me", cookies={"optio_session": token})
    assert response.status_code == 401


async def test_me_names_the_local_admin(api_only: Optio) -> None:
    me = (await api_only.client.get("/api/auth/me")).json()["user"]
    assert me["displayName"] == "Local admin"
    assert me["workspaceRole"] == "admin"
    assert me["workspaceId"] == api_only.workspace_id


async def test_validation_errors_are_400_with_field_paths(api_only: Optio) -> None:
    response = await api_only.client.post("/api/repos", json={"defaultBranch": "a b"})
    assert response.status_code == 400
    body = response.json()
    fields = {d["field"] for d in body["details"]}
    assert fields == {"repoUrl", "defaultBranch"}
    assert body["error"].startswith("Invalid fields:")


async def test_unknown_route_uses_the_envelope(api_only: Optio) -> None:
    response = await api_only.client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


async def test_another_workspace_row_is_a_404(api_only: Optio, make_repo) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo()
    created = await api_only.client.post("/api/repos", json={"repoUrl": str(repo)})
    assert created.status_code == 201
    repo_id = created.json()["repo"]["id"]

    other_token = new_api_token()
    engine = create_engine(api_only.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        workspace = Workspace(name="Other", slug="other")
        session.add(workspace)
        await session.flush()
        user = User(
            provider="local",
            external_id="someone",
            display_name="Someone",
            default_workspace_id=workspace.id,
        )
        session.add(user)
        await session.flush()
        session.add(WorkspaceMember(workspace_id=workspace.id, user_id=user.id, role="admin"))
        session.add(
            ApiKey(user_id=user.id, name="t", prefix="x", hashed_key=hash_token(other_token))
        )
    await engine.dispose()

    headers = {"Authorization": f"Bearer {other_token}"}
    assert (await api_only.anon.get(f"/api/repos/{repo_id}", headers=headers)).status_code == 404
    listed = await api_only.anon.get("/api/repos", headers=headers)
    assert listed.json() == {"repos": []}
    deleted = await api_only.anon.delete(f"/api/repos/{repo_id}", headers=headers)
    assert deleted.status_code == 404
    # Asking for the admin's workspace by header does not help a non-member.
    sneaky = await api_only.anon.get(
        f"/api/repos/{repo_id}", headers={**headers, "x-workspace-id": api_only.workspace_id}
    )
    assert sneaky.status_code == 404
    assert (await api_only.client.get(f"/api/repos/{repo_id}")).status_code == 200


async def test_repo_crud_and_duplicate(api_only: Optio, make_repo) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo()
    first = await api_only.client.post(
        "/api/repos", json={"repoUrl": str(repo), "autoMerge": True, "testCommand": "true"}
    )
    assert first.status_code == 201
    body = first.json()["repo"]
    assert body["repoUrl"] == f"file://{repo.resolve()}"
    assert body["autoMerge"] is True and body["maxConcurrentTasks"] == 2
    again = await api_only.client.post("/api/repos", json={"repoUrl": f"file://{repo}"})
    assert again.status_code == 409
    patched = await api_only.client.patch(
        f"/api/repos/{body['id']}", json={"maxConcurrentTasks": 4, "testCommand": None}
    )
    assert patched.json()["repo"]["maxConcurrentTasks"] == 4
    assert patched.json()["repo"]["testCommand"] is None
    bad = await api_only.client.patch(f"/api/repos/{body['id']}", json={"maxConcurrentTasks": 0})
    assert bad.status_code == 400
    assert (await api_only.client.delete(f"/api/repos/{body['id']}")).status_code == 204
    assert (await api_only.client.get(f"/api/repos/{body['id']}")).status_code == 404
    engine = create_engine(api_only.settings.database_url_resolved)
    async with session_factory(engine)() as session:
        assert list((await session.execute(select(Repo))).scalars()) == []
    await engine.dispose()


async def test_repo_url_must_be_git(api_only: Optio, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for value in ("not a url", str(tmp_path), "ftp://example.com/x"):
        response = await api_only.client.post("/api/repos", json={"repoUrl": value})
        assert response.status_code == 400, value
        assert response.json()["details"][0]["field"] == "repoUrl"


async def test_health_is_503_when_the_database_is_unreachable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from api.main import create_app
    from core.settings import Settings
    from tests.conftest import free_port

    settings = Settings(
        data_dir=tmp_path,
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/nothing",
        temporal_address=f"127.0.0.1:{free_port()}",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["healthy"] is False
    assert body["checks"]["database"].startswith("error")
    assert body["checks"]["temporal"].startswith("error")

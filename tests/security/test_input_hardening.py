"""The smaller holes of issue 13's sweep, each performed through the API.

Who a user lookup reveals, NUL bytes, sizes of free-form fields, coerced booleans and
integers, and skill files that leave their skill.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from store.db import create_engine, session_factory, transaction
from store.models import User
from tests.conftest import Optio, cancel_open_workflows
from tests.identity.conftest import Person

MakeRepo = Callable[..., Path]


@pytest.fixture
async def app(api_only: Optio) -> AsyncIterator[Optio]:
    yield api_only
    await cancel_open_workflows(api_only)  # any task a hole let through


async def set_email(optio: Optio, user_id: str, email: str) -> None:
    engine = create_engine(optio.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        await session.execute(update(User).where(User.id == user_id).values(email=email))
    await engine.dispose()


async def test_user_lookup_finds_only_people_who_share_a_workspace(
    app: Optio, people: Callable[..., Any]
) -> None:
    bob: Person = await people("Bob", member_of=app.workspace_id)
    await set_email(app, bob.user_id, "bob@example.com")
    # Mallory makes a workspace of her own, so she is an admin somewhere.
    mallory: Person = await people("Mallory")
    probe = await mallory.client.get("/api/users/lookup", params={"email": "bob@example.com"})
    assert probe.status_code == 404, probe.text
    assert "bob" not in probe.text.lower()

    carol: Person = await people("Carol", member_of=app.workspace_id, role="admin")
    found = await carol.client.get("/api/users/lookup", params={"email": "bob@example.com"})
    assert found.status_code == 200 and found.json()["user"]["id"] == bob.user_id
    # The instance's local admin finds anyone, Mallory included.
    await set_email(app, mallory.user_id, "mallory@example.com")
    anyone = await app.client.get("/api/users/lookup", params={"email": "mallory@example.com"})
    assert anyone.status_code == 200 and anyone.json()["user"]["id"] == mallory.user_id


async def test_nul_bytes_are_refused_in_bodies_and_queries(app: Optio, make_repo: MakeRepo) -> None:
    repo = str(make_repo())
    task = {"title": "t", "prompt": "p", "repoUrl": repo, "agentType": "script"}
    blueprint = {"type": "repo-blueprint", "name": "n\x00", "prompt": "p", "repoUrl": repo}
    nested = {"ticket": {"note": "x\x00"}}
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/api/tasks", {**task, "title": "a\x00b"}, "title"),
        ("POST", "/api/tasks", {**task, "metadata": nested}, "metadata.ticket.note"),
        ("POST", "/api/tasks", {**task, "metadata": {"k\x00": 1}}, "metadata.k"),
        ("POST", "/api/tasks", blueprint, "name"),
        ("POST", "/api/secrets", {"name": "TOKEN", "value": "abc\x00def"}, "value"),
        (
            "POST",
            "/api/repos",
            {"repoUrl": repo, "testCommand": "true\x00; rm -rf /"},
            "testCommand",
        ),
    ]
    for method, path, body, field in cases:
        response = await app.client.request(method, path, json=body)
        assert response.status_code == 400, (path, body, response.text)
        assert response.json()["details"][0]["field"] == field, response.text
    for path, params in (
        ("/api/users/lookup", {"email": "a\x00@example.com"}),
        ("/api/prompt-templates/effective", {"repoUrl": repo + "\x00"}),
    ):
        response = await app.client.get(path, params=params)
        assert response.status_code == 400, (path, response.text)
        assert "NUL" in response.json()["details"][0]["message"]
    assert (await app.client.get("/api/tasks?type=all")).json()["tasks"] == []
    assert (await app.client.get("/api/secrets")).json()["secrets"] == []
    assert (await app.client.get("/api/repos")).json()["repos"] == []
    # An escaped backslash followed by "u0000" is text, not a NUL: accepted.
    fine = await app.client.post(
        "/api/tasks", json={**task, "type": "repo-blueprint", "name": "n", "prompt": "\\u0000"}
    )
    assert fine.status_code == 201, fine.text


async def test_booleans_and_integers_are_not_coerced(app: Optio, make_repo: MakeRepo) -> None:
    repo = str(make_repo())
    task = {"title": "t", "prompt": "p", "repoUrl": repo, "agentType": "script"}
    blueprint = {"type": "repo-blueprint", "name": "n", "prompt": "p", "repoUrl": repo}
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/api/repos", {"repoUrl": repo, "autoMerge": "yes"}, "autoMerge"),
        ("/api/repos", {"repoUrl": repo, "autoMerge": 1}, "autoMerge"),
        ("/api/repos", {"repoUrl": repo, "cautiousMode": 0}, "cautiousMode"),
        ("/api/repos", {"repoUrl": repo, "maxConcurrentTasks": "3"}, "maxConcurrentTasks"),
        ("/api/repos", {"repoUrl": repo, "maxConcurrentTasks": 2.5}, "maxConcurrentTasks"),
        ("/api/tasks", {**task, "priority": True}, "priority"),
        ("/api/tasks", {**task, "maxRetries": "2"}, "maxRetries"),
        ("/api/tasks", {**blueprint, "enabled": "true"}, "enabled"),
        ("/api/tasks", {**blueprint, "priority": True}, "priority"),
    ]
    for path, body, field in cases:
        response = await app.client.post(path, json=body)
        assert response.status_code == 400, (body, response.text)
        assert field in response.json()["error"], response.text
    assert (await app.client.get("/api/repos")).json()["repos"] == []
    assert (await app.client.get("/api/tasks?type=all")).json()["tasks"] == []
    ok = await app.client.post("/api/repos", json={"repoUrl": repo, "autoMerge": True})
    assert ok.status_code == 201 and ok.json()["repo"]["autoMerge"] is True


async def test_metadata_and_skill_files_have_size_caps(app: Optio, make_repo: MakeRepo) -> None:
    repo = str(make_repo())
    big = {"blob": "x" * (65 * 1024)}
    task = {"title": "t", "prompt": "p", "repoUrl": repo, "agentType": "script", "metadata": big}
    too_big = await app.client.post("/api/tasks", json=task)
    assert too_big.status_code == 400 and "metadata" in too_big.json()["error"], too_big.text[:300]
    blueprint = {"type": "repo-blueprint", "name": "n", "prompt": "p", "repoUrl": repo}
    assert (
        await app.client.post("/api/tasks", json={**blueprint, "metadata": big})
    ).status_code == 400

    def skill(files: list[dict[str, str]]) -> dict[str, Any]:
        return {"name": "s", "prompt": "p", "layout": "skill-dir", "files": files}

    for files in (
        [{"relativePath": "a.txt", "content": "x" * (300 * 1024)}],
        [{"relativePath": f"f{i}.txt", "content": "x"} for i in range(51)],
        [{"relativePath": f"f{i}.txt", "content": "x" * (250 * 1024)} for i in range(5)],
    ):
        refused = await app.client.post("/api/skills", json=skill(files))
        assert refused.status_code == 400, refused.text[:300]
    assert (await app.client.get("/api/skills")).json()["skills"] == []


async def test_skill_files_stay_inside_their_skill(app: Optio) -> None:
    def skill(path: str) -> dict[str, Any]:
        files = [{"relativePath": path, "content": "echo hi"}]
        return {"name": "s", "prompt": "p", "layout": "skill-dir", "files": files}

    for path in (
        "../escape.sh",
        "/etc/cron.d/x",
        "a/../../b",
        "~/.bashrc",
        "a\\..\\b",
        "./x",
        "a//b",
    ):
        refused = await app.client.post("/api/skills", json=skill(path))
        assert refused.status_code == 400, (path, refused.text)
        assert "relativePath" in refused.text
    made = await app.client.post("/api/skills", json=skill("scripts/run.sh"))
    assert made.status_code == 201, made.text
    skill_id = made.json()["skill"]["id"]
    moved = await app.client.patch(
        f"/api/skills/{skill_id}", json={"files": [{"relativePath": "../x", "content": "y"}]}
    )
    assert moved.status_code == 400, moved.text

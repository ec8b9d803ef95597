"""/api/mcp-servers and /api/skills (inventory §3.21): CRUD, scopes, workspace isolation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from store.agent_config import servers_for_run, skills_for_run
from store.db import create_engine, session_factory, transaction
from tests.conftest import Optio

MakeRepo = Callable[..., Path]


async def test_mcp_servers_crud_and_scopes(api_only: Optio, make_repo: MakeRepo) -> None:
    client = api_only.client
    repo = make_repo()
    body = {"name": "docs", "command": "npx", "args": ["docs-mcp"], "env": {"K": "${{TOKEN}}"}}
    created = await client.post("/api/mcp-servers", json=body)
    assert created.status_code == 201, created.text
    server = created.json()["server"]
    assert server["repoUrl"] is None and server["enabled"] and server["env"] == {"K": "${{TOKEN}}"}
    scoped = await client.post(
        "/api/mcp-servers", json={**body, "command": "repo-docs", "repoUrl": str(repo)}
    )
    assert scoped.json()["server"]["repoUrl"] == f"file://{repo.resolve()}"
    assert len((await client.get("/api/mcp-servers")).json()["servers"]) == 2
    only_global = (await client.get("/api/mcp-servers", params={"scope": "global"})).json()
    assert [s["command"] for s in only_global["servers"]] == ["npx"]
    only_repo = (await client.get("/api/mcp-servers", params={"scope": str(repo)})).json()
    assert [s["command"] for s in only_repo["servers"]] == ["repo-docs"]

    patched = await client.patch(
        f"/api/mcp-servers/{server['id']}", json={"env": None, "enabled": False}
    )
    assert patched.status_code == 200
    assert patched.json()["server"]["env"] == {} and not patched.json()["server"]["enabled"]
    assert (await client.get(f"/api/mcp-servers/{server['id']}")).status_code == 200
    bad = await client.post("/api/mcp-servers", json={"name": "bad name!", "command": "x"})
    assert bad.status_code in (400, 422)

    # What a run of that repo receives: enabled rows only, the repo's winning by name.
    engine = create_engine(api_only.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        rows = await servers_for_run(
            session, workspace_id=api_only.workspace_id, repo_url=f"file://{repo.resolve()}"
        )
    await engine.dispose()
    assert [r.command for r in rows] == ["repo-docs"]

    assert (await client.delete(f"/api/mcp-servers/{server['id']}")).status_code == 204
    assert (await client.get(f"/api/mcp-servers/{server['id']}")).status_code == 404


async def test_skills_crud_and_agent_type_filter(api_only: Optio) -> None:
    client = api_only.client
    body = {
        "name": "deploy",
        "prompt": "How to deploy",
        "layout": "skill-dir",
        "files": [{"relativePath": "run.sh", "content": "echo hi"}],
        "agentTypes": ["codex"],
    }
    created = await client.post("/api/skills", json=body)
    assert created.status_code == 201, created.text
    skill = created.json()["skill"]
    assert skill["files"] == [{"relativePath": "run.sh", "content": "echo hi"}]
    assert skill["layout"] == "skill-dir" and skill["agentTypes"] == ["codex"]
    await client.post("/api/skills", json={"name": "greet", "prompt": "Hi"})

    engine = create_engine(api_only.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        for agent, names in (("codex", ["deploy", "greet"]), ("claude-code", ["greet"])):
            rows = await skills_for_run(
                session, workspace_id=api_only.workspace_id, repo_url="x", agent_type=agent
            )
            assert [r.name for r in rows] == names
    await engine.dispose()

    patched = await client.patch(f"/api/skills/{skill['id']}", json={"agentTypes": None})
    assert patched.json()["skill"]["agentTypes"] is None
    listed = (await client.get("/api/skills")).json()["skills"]
    assert [s["name"] for s in listed] == ["deploy", "greet"]
    assert (await client.delete(f"/api/skills/{skill['id']}")).status_code == 204
    assert (await client.get(f"/api/skills/{skill['id']}")).status_code == 404
    unauthenticated = await api_only.anon.get("/api/skills")
    assert unauthenticated.status_code == 401

"""/api/mcp-servers and /api/skills (inventory §3.21): CRUD, scopes, workspace isolation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

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


async def test_a_task_names_its_model_and_models_the_cli_refuses_are_refused(
    api_only: Optio, make_repo: MakeRepo
) -> None:
    from tests.agents.conftest import AGENTS_BIN, need_cli

    need_cli("opencode")
    if not (AGENTS_BIN.parent.parent / "opencode-models.txt").is_file():
        pytest.skip("`make agents` did not write OpenCode's model list")
    client = api_only.client
    repo = make_repo()
    body = {"title": "t", "prompt": "p", "repoUrl": str(repo), "agentType": "opencode"}

    unknown = await client.post("/api/tasks", json={**body, "model": "anthropic/claude-nope-9"})
    assert unknown.status_code == 400, unknown.text
    message = unknown.json()["error"]
    assert "claude-nope-9" in message and "anthropic/claude-sonnet-4-5" in message
    assert "openai/" not in message  # the provider's own models only
    no_provider = await client.post("/api/tasks", json={**body, "model": "acme/x"})
    assert no_provider.status_code == 400 and "anthropic" in no_provider.json()["error"]
    not_a_name = await client.post("/api/tasks", json={**body, "model": "x; rm -rf /"})
    assert not_a_name.status_code in (400, 422)
    # metadata.model is the same setting, checked the same way.
    hidden = await client.post("/api/tasks", json={**body, "metadata": {"model": "acme/x"}})
    assert hidden.status_code == 400

    created = await client.post(
        "/api/tasks", json={**body, "model": "anthropic/claude-haiku-4-5", "metadata": {"k": 1}}
    )
    assert created.status_code == 201, created.text
    task = created.json()["task"]
    assert task["metadata"] == {"k": 1, "model": "anthropic/claude-haiku-4-5"}
    patched = await client.patch(f"/api/tasks/{task['id']}", json={"metadata": {"model": "a/b"}})
    assert patched.status_code == 400
    # Codex passes any name to its provider (a gateway may serve any model): accepted.
    codex = await client.post(
        "/api/tasks", json={**body, "agentType": "codex", "model": "gpt-from-my-gateway"}
    )
    assert codex.status_code == 201, codex.text


async def test_a_repository_names_each_agents_model(api_only: Optio, make_repo: MakeRepo) -> None:
    from types import SimpleNamespace

    from integrations.agents.models import effective_model
    from tests.agents.conftest import AGENTS_BIN

    client = api_only.client
    created = await client.post(
        "/api/repos", json={"repoUrl": str(make_repo()), "claudeModel": "claude-sonnet-4-5"}
    )
    assert created.status_code == 201, created.text
    repo = created.json()["repo"]
    assert repo["claudeModel"] == "claude-sonnet-4-5" and repo["geminiModel"] is None
    patched = await client.patch(
        f"/api/repos/{repo['id']}", json={"geminiModel": "gemini-2.5-flash", "claudeModel": None}
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["repo"]["claudeModel"], patched.json()["repo"]["geminiModel"]) == (
        None,
        "gemini-2.5-flash",
    )
    bad = await client.patch(f"/api/repos/{repo['id']}", json={"codexModel": "x; rm -rf /"})
    assert bad.status_code == 400, bad.text
    if (AGENTS_BIN.parent.parent / "opencode-models.txt").is_file():
        unknown = await client.patch(
            f"/api/repos/{repo['id']}", json={"opencodeModel": "anthropic/claude-nope-9"}
        )
        assert unknown.status_code == 400 and "claude-nope-9" in unknown.json()["error"]

    # The task's own model first, then the repository's, then the instance default.
    row = SimpleNamespace(gemini_model="gemini-2.5-flash", claude_model=None)
    defaults = {"gemini": "gemini-2.5-pro", "claude-code": "opus"}
    assert effective_model("gemini", {"model": "mine"}, defaults, row) == "mine"
    assert effective_model("gemini", None, defaults, row) == "gemini-2.5-flash"
    assert effective_model("claude-code", None, defaults, row) == "opus"

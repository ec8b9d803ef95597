"""Prompt templates, task templates, preview and the effective prompt chain."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.prompt_chain import BUILTIN_PROMPT_TEMPLATE
from store.db import create_engine, session_factory
from store.templates import effective_prompt_template
from tests.blueprints.conftest import create_blueprint, other_workspace_client
from tests.conftest import Optio
from tests.lifecycle_helpers import wait_for_state

MakeRepo = Callable[..., Path]


async def test_prompt_template_crud_and_preview(api_only: Optio) -> None:
    client = api_only.client
    created = await client.post(
        "/api/prompt-templates",
        json={
            "name": "greeting",
            "template": "Hello {{ name }}{{#if vip}}, welcome back{{/if}}. {{unknown}}",
            "kind": "job",
            "paramsSchema": {"type": "object"},
        },
    )
    assert created.status_code == 201, created.text
    template = created.json()["template"]
    assert template["kind"] == "job" and template["isDefault"] is False

    preview = await client.post(
        f"/api/prompt-templates/{template['id']}/preview",
        json={"params": {"name": "Ada", "vip": True}},
    )
    # Unknown placeholders stay visible, as in the reference's renderTemplateString.
    assert preview.json() == {"rendered": "Hello Ada, welcome back. {{unknown}}"}
    plain = await client.post(
        f"/api/prompt-templates/{template['id']}/preview", json={"params": {"name": None}}
    )
    assert plain.json()["rendered"] == "Hello . {{unknown}}"

    listed = await client.get("/api/prompt-templates", params={"kind": "job"})
    assert [t["name"] for t in listed.json()["templates"]] == ["greeting"]
    assert (await client.get("/api/prompt-templates", params={"kind": "review"})).json() == {
        "templates": []
    }
    unclosed = await client.patch(
        f"/api/prompt-templates/{template['id']}", json={"template": "{{#if a}}x"}
    )
    assert unclosed.status_code == 400 and "Unclosed {{#if a}}" in unclosed.json()["error"]
    patched = await client.patch(
        f"/api/prompt-templates/{template['id']}", json={"description": "says hi"}
    )
    assert patched.json()["template"]["description"] == "says hi"
    duplicate = await client.post(
        "/api/prompt-templates/named", json={"name": "greeting", "template": "x"}
    )
    assert duplicate.status_code == 409
    bad = await client.post("/api/prompt-templates", json={"name": "b", "template": "{{/if}}"})
    assert bad.status_code == 400
    async with await other_workspace_client(api_only) as other:
        assert (await other.get(f"/api/prompt-templates/{template['id']}")).status_code == 404
        assert (await other.get("/api/prompt-templates")).json() == {"templates": []}
    assert (await client.delete(f"/api/prompt-templates/{template['id']}")).status_code == 204
    assert (await client.get(f"/api/prompt-templates/{template['id']}")).status_code == 404


async def test_the_effective_prompt_chain(api_only: Optio, make_repo: MakeRepo) -> None:
    client, repo = api_only.client, make_repo()
    url = f"file://{repo.resolve()}"

    async def effective() -> dict:
        response = await client.get("/api/prompt-templates/effective", params={"repoUrl": url})
        assert response.status_code == 200, response.text
        body: dict = response.json()
        return body

    assert (await effective())["source"] == "builtin"
    assert (await effective())["template"] == BUILTIN_PROMPT_TEMPLATE
    builtin = await client.get("/api/prompt-templates/builtin-default")
    assert builtin.json() == {"template": BUILTIN_PROMPT_TEMPLATE}

    workspace = await client.post("/api/prompt-templates", json={"template": "WS {{TASK_ID}}"})
    assert workspace.status_code == 201 and workspace.json()["ok"] is True
    assert (await effective())["template"] == "WS {{TASK_ID}}"
    override = await client.post(
        "/api/prompt-templates", json={"template": "REPO", "repoUrl": str(repo), "autoMerge": True}
    )
    assert override.status_code == 201
    chosen = await effective()
    assert (chosen["source"], chosen["template"], chosen["autoMerge"]) == ("repo", "REPO", True)
    # Saving the default again updates it rather than adding a second one.
    await client.post("/api/prompt-templates", json={"template": "WS2"})
    defaults = (await client.get("/api/prompt-templates")).json()["templates"]
    assert sorted(t["template"] for t in defaults) == ["REPO", "WS2"]

    # The same chain as a store function, for the agents' prompt assembly.
    engine = create_engine(api_only.settings.database_url_resolved)
    async with session_factory(engine)() as session:
        found = await effective_prompt_template(
            session, workspace_id=api_only.workspace_id, repo_url=url
        )
        other = await effective_prompt_template(
            session, workspace_id=api_only.workspace_id, repo_url="https://x/y"
        )
    await engine.dispose()
    assert (found.source, found.template) == ("repo", "REPO")
    assert (other.source, other.template) == ("workspace", "WS2")


async def test_task_templates_crud(api_only: Optio) -> None:
    client = api_only.client
    created = await client.post(
        "/api/task-templates",
        json={"name": "bugfix", "title": "Fix {{area}}", "prompt": "Fix it", "priority": 10},
    )
    assert created.status_code == 201, created.text
    template = created.json()["template"]
    patched = await client.patch(
        f"/api/task-templates/{template['id']}", json={"agentType": "claude"}
    )
    assert patched.json()["template"]["agentType"] == "claude-code"
    assert [t["name"] for t in (await client.get("/api/task-templates")).json()["templates"]] == [
        "bugfix"
    ]
    bad = await client.post("/api/task-templates", json={"name": "x", "prompt": "{{#if a}}"})
    assert bad.status_code == 400
    assert (await client.delete(f"/api/task-templates/{template['id']}")).status_code == 204
    assert (await client.get("/api/task-templates")).json() == {"templates": []}


async def test_a_blueprint_can_use_a_named_prompt_template(bp: Optio, make_repo: MakeRepo) -> None:
    created = await bp.client.post(
        "/api/prompt-templates/named",
        json={"name": "touch", "template": "touch {{file}}", "defaultAgentType": "script"},
    )
    template_id = created.json()["template"]["id"]
    repo = make_repo()
    blueprint = await create_blueprint(
        bp.client, repo, prompt=None, promptTemplateId=template_id, agentType=None
    )
    started = await bp.client.post(
        f"/api/tasks/{blueprint['id']}/runs", json={"params": {"file": "a.txt"}}
    )
    task = (await wait_for_state(bp.client, started.json()["runId"], "pr_opened"))["task"]
    assert task["agentType"] == "script"
    assert task["prompt"] == 'export OPTIO_PARAM_file=a.txt\ntouch "${OPTIO_PARAM_file}"'

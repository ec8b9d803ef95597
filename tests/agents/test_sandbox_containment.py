"""The real Claude Code, run by the scripted model, attacks from inside its sandbox.

The probe is the one of tests/security/test_sandbox_attacks.py, run with the CLI's own
Bash tool: the tool results the model gets back show what the agent could see.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.agents.conftest import need_cli
from tests.agents.model_endpoint import Endpoint
from tests.conftest import Optio
from tests.lifecycle_helpers import wait_for_state
from tests.security.test_sandbox_attacks import (
    OTHER_SECRET,
    files_holding,
    other_workspace_with_secret,
    probe_script,
)

pytestmark = [pytest.mark.engines("sqlite"), pytest.mark.usefixtures("settled")]
MakeRepo = Callable[..., Path]


async def test_a_claude_code_run_is_contained_too(
    optio: Optio, make_repo: MakeRepo, model_endpoint: Endpoint
) -> None:
    need_cli("claude")
    other_repo = await other_workspace_with_secret(optio, make_repo)
    repo = make_repo()
    response = await optio.client.post("/api/repos", json={"repoUrl": str(repo)})
    assert response.status_code == 201, response.text
    probe = probe_script(data_dir=optio.settings.data_dir, other_repo=other_repo)
    # The scripted model runs the probe with Claude Code's own Bash tool.
    model_endpoint.commands.append(probe)
    body = {
        "title": "Probe",
        "prompt": "Run the command you are given.",
        "repoUrl": str(repo),
        "agentType": "claude-code",
    }
    created = await optio.client.post("/api/tasks", json=body)
    assert created.status_code == 201, created.text
    task_id = created.json()["task"]["id"]
    await wait_for_state(optio.client, task_id, "pr_opened", "completed", "failed", timeout=120)

    # What the Bash tool answered: the probe's output, as the model saw it.
    results = [
        json.dumps(block.get("content"))
        for r in model_endpoint.api_requests("anthropic")
        for m in r["body"]["messages"]
        if m["role"] == "user" and not isinstance(m["content"], str)
        for block in m["content"]
        if block.get("type") == "tool_result"
    ]
    assert any("probe finished" in r for r in results), results
    leaks = [r for r in results if "LEAK" in r]
    assert leaks == []
    # The agent's own key reached it, in memory: it is nowhere on the host's disk.
    assert files_holding(optio.settings.data_dir, OTHER_SECRET, "test-key") == []

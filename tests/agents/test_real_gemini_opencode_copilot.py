"""Gemini CLI, OpenCode and Copilot CLI, the real CLIs, from POST /api/tasks to a merged branch.

Each talks to the scripted endpoint on loopback in its provider's wire format: Gemini
the Gemini API (GOOGLE_GEMINI_BASE_URL), OpenCode its Anthropic provider with the base
URL in opencode.json, Copilot a BYOK Anthropic provider (COPILOT_PROVIDER_*). The
workflow, runner, git and API are the real ones, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.agents import mcp_server
from tests.agents.conftest import AGENT_MODELS, CLI, need_cli
from tests.agents.model_endpoint import IN_TOKENS, INVALID_KEY, OUT_TOKENS, Endpoint
from tests.agents.test_real_agents import connect, create, logs, runs_of, settled_logs
from tests.conftest import Optio
from tests.lifecycle_helpers import file_on_branch, triggers, wait_for_state

# OpenCode takes 5-40 s per run on a loaded 2-core machine (Bun start, its database).
pytestmark = [
    pytest.mark.engines("sqlite"),
    pytest.mark.usefixtures("settled"),
    pytest.mark.timeout(300),
]
MakeRepo = Callable[..., Path]
AGENTS = ["gemini", "opencode", "copilot"]
# The API each CLI speaks to the endpoint.
API = {"gemini": "gemini", "opencode": "anthropic", "copilot": "anthropic"}
# USD per million tokens [input, output] of each agent's model: the price table for
# Gemini and Copilot (they report no cost), OpenCode's own catalogue for OpenCode.
PRICE = {"gemini": (1.25, 10), "opencode": (3, 15), "copilot": (3, 15)}
# Where the run leaves Optio's setup files in the worktree (never committed).
SETUP_FILES = {
    "gemini": [".gemini/settings.json", ".gemini/skills/greet/SKILL.md"],
    "opencode": ["opencode.json", ".opencode/skills/greet/SKILL.md"],
    "copilot": [".github/skills/greet/SKILL.md"],
}


def agent_turns(endpoint: Endpoint, agent: str) -> list[dict[str, Any]]:
    """The model requests of the agent's own loop (not its title or routing side calls)."""
    requests = endpoint.api_requests(API[agent])
    if agent == "gemini":
        return [r for r in requests if "tools" in r["body"]]
    return [r for r in requests if r["body"].get("tools")]


def expected_cost(agent: str, requests: int) -> str:
    per_input, per_output = PRICE[agent]
    total = Decimal(requests) * (IN_TOKENS * Decimal(str(per_input)) + OUT_TOKENS * per_output)
    return format((total / 1_000_000).normalize(), "f")


async def add_skill_and_mcp_server(optio: Optio) -> None:
    skill = {
        "name": "greet",
        "description": "Say hi to someone",
        "prompt": "Say hi to the person named in the request.",
        "layout": "skill-dir",
    }
    assert (await optio.client.post("/api/skills", json=skill)).status_code == 201
    # The server's source travels in its arguments and the system Python runs it: the
    # agent's sandbox sees /usr, not this checkout.
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    server = {
        "name": "docs",
        "command": python,
        "args": ["-c", Path(mcp_server.__file__).read_text()],
        "env": {"TOKEN": "${{DOCS_TOKEN}}"},
    }
    assert (await optio.client.post("/api/mcp-servers", json=server)).status_code == 201


@pytest.mark.parametrize("agent", AGENTS)
async def test_agent_writes_a_file_and_the_branch_is_merged(
    optio: Optio, make_repo: MakeRepo, model_endpoint: Endpoint, agent: str
) -> None:
    need_cli(CLI[agent])
    repo = make_repo()
    await connect(optio, repo, autoMerge=True)
    await add_skill_and_mcp_server(optio)
    task_id = await create(
        optio, repo, f'Create the file hello.txt containing "from {agent}"', agent
    )
    try:
        done = (await wait_for_state(optio.client, task_id, "completed", "failed", timeout=240))[
            "task"
        ]
    except BaseException:
        print(json.dumps(await logs(optio, task_id), indent=1)[:20000])
        raise
    entries = await settled_logs(optio, task_id)
    assert done["state"] == "completed", (done, entries)
    assert file_on_branch(repo, "main", "hello.txt") == f"from {agent}"
    assert (await triggers(optio.client, task_id))[-1] == ("completed", "auto_merged")

    # Read the task, write the file, answer: three turns of 100 in / 20 out each.
    turns = agent_turns(model_endpoint, agent)
    assert len(turns) == 3, [r["body"].get("model") for r in turns]
    assert (done["inputTokens"], done["outputTokens"]) == (300, 60)
    assert done["costUsd"] == expected_cost(agent, 3)
    assert done["modelUsed"] == AGENT_MODELS[agent]
    assert done["sessionId"] and done["resultSummary"] == "All done: wrote hello.txt."

    # The agent wrote with its own edit tool (the log shows it as Write <path>).
    writes = [e for e in entries if e["logType"] == "tool_use" and e["content"].startswith("Write")]
    assert writes and writes[0]["content"].endswith("/hello.txt"), entries
    # The CLI found the MCP server where Optio put it, started it with the resolved
    # secret and offered its tool to the model; the skill reached the model too.
    sent = json.dumps([r["body"] for r in turns])
    assert mcp_server.TOOL_OK in sent and "Say hi to someone" in sent
    assert "s3cret-docs-token" not in json.dumps(entries) + sent
    for path in SETUP_FILES[agent]:
        assert file_on_branch(repo, "main", path) is None, path


@pytest.mark.parametrize("agent", AGENTS)
async def test_resume_continues_the_same_session(
    optio: Optio, make_repo: MakeRepo, model_endpoint: Endpoint, agent: str
) -> None:
    need_cli(CLI[agent])
    repo = make_repo()
    await connect(optio, repo, autoMerge=True, testCommand="test -f second.txt")
    task_id = await create(optio, repo, 'Create the file hello.txt containing "one"', agent)
    first = (await wait_for_state(optio.client, task_id, "needs_attention", timeout=240))["task"]
    session_id = first["sessionId"]
    assert session_id
    before = len(agent_turns(model_endpoint, agent))

    prompt = 'Also Create the file second.txt containing "two"'
    resumed = await optio.client.post(f"/api/tasks/{task_id}/resume", json={"prompt": prompt})
    assert resumed.status_code == 200, resumed.text
    done = (await wait_for_state(optio.client, task_id, "completed", "failed", timeout=240))["task"]
    assert done["state"] == "completed", (done, await logs(optio, task_id))
    assert file_on_branch(repo, "main", "second.txt") == "two"
    assert done["sessionId"] == session_id
    # The resumed run's first request carries the first run's conversation.
    later = agent_turns(model_endpoint, agent)[before:]
    history = json.dumps(later[0]["body"])
    assert "hello.txt" in history
    # The resumed run counts its own requests only (the second file and the answer), and
    # the task's totals are the sum of its runs: 3 requests, then 2.
    assert len(later) == 2
    assert (done["inputTokens"], done["outputTokens"]) == (500, 100)
    assert Decimal(done["costUsd"]) == Decimal(expected_cost(agent, 5))


@pytest.mark.parametrize(
    ("agent", "names", "requests"),
    [
        ("gemini", ("Gemini API", "HTTP 401"), 1),
        ("opencode", ("anthropic provider", "HTTP 401"), 1),
        # Copilot retries an auth failure twice within the run, milliseconds apart
        # (in its native runtime, no switch): three requests, one run, one failure.
        ("copilot", ("provider at http://127.0.0.1:", "HTTP 401"), 3),
    ],
)
async def test_authentication_failure_fails_once_naming_provider_and_status(
    optio: Optio,
    make_repo: MakeRepo,
    model_endpoint: Endpoint,
    agent: str,
    names: tuple[str, str],
    requests: int,
) -> None:
    need_cli(CLI[agent])
    optio.settings.gemini_api_key = SecretStr(INVALID_KEY)
    optio.settings.anthropic_api_key = SecretStr(INVALID_KEY)
    optio.settings.copilot_provider_api_key = SecretStr(INVALID_KEY)
    repo = make_repo()
    task_id = await create(optio, repo, 'Create the file x.txt containing "x"', agent, maxRetries=2)
    failed = (await wait_for_state(optio.client, task_id, "failed", timeout=240))["task"]
    message = failed["errorMessage"]
    assert message.startswith("Agent authentication failed: "), message
    assert all(name in message for name in names), message
    assert INVALID_KEY not in message
    assert len(agent_turns(model_endpoint, agent)) == requests
    # Not retried by the workflow although the task allows two retries.
    assert await runs_of(optio, task_id) == 1
    assert (await triggers(optio.client, task_id))[-1] == ("failed", "agent_failure")


async def test_the_task_model_wins_over_the_default(
    optio: Optio, make_repo: MakeRepo, model_endpoint: Endpoint
) -> None:
    need_cli("gemini")
    repo = make_repo()
    await connect(optio, repo, autoMerge=True)
    prompt = 'Create the file hello.txt containing "flash"'
    task_id = await create(optio, repo, prompt, "gemini", model="gemini-2.0-flash")
    done = (await wait_for_state(optio.client, task_id, "completed", "failed", timeout=240))["task"]
    assert done["state"] == "completed", (done, await logs(optio, task_id))
    assert done["modelUsed"] == "gemini-2.0-flash"
    assert {r["body"]["model"] for r in agent_turns(model_endpoint, "gemini")} == {
        "gemini-2.0-flash"
    }
    # Priced at gemini-2.0-flash's rate ($0.1/M in, $0.4/M out), not the default model's.
    assert done["costUsd"] == "0.000054"

"""A message to a running Claude Code run reaches it mid-run, through its stdin
(`--input-format stream-json`): the real CLI against the scripted model endpoint."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.agents.conftest import need_cli
from tests.agents.model_endpoint import Endpoint
from tests.conftest import Optio
from tests.lifecycle_helpers import file_on_branch, wait_for_state

pytestmark = [pytest.mark.engines("sqlite"), pytest.mark.usefixtures("settled")]
MakeRepo = Callable[..., Path]
NOTE = "Please also mention the weather in your summary"


async def _until(check: Callable[[], Any], *, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


def _mentions(request: dict[str, Any], text: str) -> bool:
    # As JSON: the quotes inside `text` are escaped there.
    return json.dumps(text)[1:-1] in json.dumps(request["body"].get("messages", []))


async def _messages(optio: Optio, task_id: str) -> list[dict[str, Any]]:
    response = await optio.client.get(f"/api/tasks/{task_id}/messages")
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def test_a_running_claude_run_receives_a_message_mid_run(
    optio: Optio, make_repo: MakeRepo, model_endpoint: Endpoint
) -> None:
    need_cli("claude")
    # The model's first answer runs a command long enough to send a message meanwhile.
    model_endpoint.commands.append("sleep 6")
    repo = make_repo()
    assert (
        await optio.client.post("/api/repos", json={"repoUrl": str(repo), "autoMerge": True})
    ).status_code == 201
    body = {"title": "t", "prompt": 'Create the file hello.txt containing "one"',
            "repoUrl": str(repo), "agentType": "claude-code"}  # fmt: skip
    created = await optio.client.post("/api/tasks", json=body)
    assert created.status_code == 201, created.text
    task_id = created.json()["task"]["id"]
    await wait_for_state(optio.client, task_id, "running", timeout=60)
    await _until(lambda: model_endpoint.api_requests("anthropic"))
    before = len(model_endpoint.api_requests("anthropic"))

    sent = await optio.client.post(f"/api/tasks/{task_id}/message", json={"content": NOTE})
    assert sent.status_code == 202, sent.text
    assert sent.json()["delivery"] == {"mode": "live", "deliveredAt": None}

    done = (await wait_for_state(optio.client, task_id, "completed", "failed", timeout=120))["task"]
    assert done["state"] == "completed", done
    requests = model_endpoint.api_requests("anthropic")
    # The next request of the same run (the one answering the command's result) carries
    # the message: the run was not restarted for it.
    following = requests[before]
    assert _mentions(following, NOTE), json.dumps(following["body"]["messages"])[-2000:]
    assert _mentions(following, "sleep 6")
    assert not any(_mentions(r, NOTE) for r in requests[:before])
    [message] = await _messages(optio, task_id)
    assert message["deliveredAt"] and message["ackedAt"]


async def test_an_interrupting_message_stops_the_turn_and_the_agent_answers_it(
    optio: Optio, make_repo: MakeRepo, model_endpoint: Endpoint
) -> None:
    need_cli("claude")
    model_endpoint.commands.append("sleep 30")
    repo = make_repo()
    assert (
        await optio.client.post("/api/repos", json={"repoUrl": str(repo), "autoMerge": True})
    ).status_code == 201
    body = {"title": "t", "prompt": "Say hello", "repoUrl": str(repo),
            "agentType": "claude-code"}  # fmt: skip
    task_id = (await optio.client.post("/api/tasks", json=body)).json()["task"]["id"]
    await wait_for_state(optio.client, task_id, "running", timeout=60)
    await _until(lambda: model_endpoint.api_requests("anthropic"))
    started = time.monotonic()
    urgent = 'Create the file urgent.txt containing "now"'
    sent = await optio.client.post(
        f"/api/tasks/{task_id}/message", json={"content": urgent, "mode": "interrupt"}
    )
    assert sent.status_code == 202, sent.text
    done = (await wait_for_state(optio.client, task_id, "completed", "failed", timeout=120))["task"]
    assert done["state"] == "completed", done
    # The 30-second command was cut short, and the message was a turn of its own.
    assert time.monotonic() - started < 25
    answered = [r for r in model_endpoint.api_requests("anthropic") if _mentions(r, urgent)]
    assert answered and _mentions(answered[0], "URGENT INTERRUPT")
    # The model acted on it: the file it asked for was written and committed.
    assert file_on_branch(repo, "main", "urgent.txt") == "now"
    [message] = await _messages(optio, task_id)
    assert message["mode"] == "interrupt" and message["ackedAt"]


async def test_a_message_before_the_run_reaches_the_prompt_of_the_next_run(
    optio: Optio, make_repo: MakeRepo, model_endpoint: Endpoint
) -> None:
    need_cli("claude")
    repo = make_repo()
    assert (
        await optio.client.post("/api/repos", json={"repoUrl": str(repo), "autoMerge": True})
    ).status_code == 201
    first = {"title": "first", "prompt": "sleep 3; echo a > a.txt", "repoUrl": str(repo),
             "agentType": "script"}  # fmt: skip
    first_id = (await optio.client.post("/api/tasks", json=first)).json()["task"]["id"]
    body = {"title": "t", "prompt": 'Create the file hello.txt containing "one"',
            "repoUrl": str(repo), "agentType": "claude-code", "dependsOn": [first_id]}  # fmt: skip
    created = await optio.client.post("/api/tasks", json=body)
    assert created.status_code == 201, created.text
    task_id = created.json()["task"]["id"]
    sent = await optio.client.post(f"/api/tasks/{task_id}/message", json={"content": NOTE})
    assert sent.status_code == 202, sent.text
    assert sent.json()["delivery"] == {"mode": "next_run", "deliveredAt": None}
    done = (await wait_for_state(optio.client, task_id, "completed", "failed", timeout=120))["task"]
    assert done["state"] == "completed", done
    assert _mentions(model_endpoint.api_requests("anthropic")[0], NOTE)
    [message] = await _messages(optio, task_id)
    assert message["deliveredAt"] and message["ackedAt"] is None

"""Every secret a workspace holds, and every credential Optio holds, is masked wherever
a run's output is stored: logs, the run's result and error, the task's events.

The `script` agent used to mask nothing, and real agents only their own keys: each test
has a script print values it should never be able to show, and passes only because
what is stored (and served by the API) shows `***` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from activities.tasks import TaskActivities
from core.settings import Settings
from schemas.workflow import TaskPatch, TransitionInput
from store.db import create_engine, session_factory
from store.models import AgentRun, Task, TaskEvent
from tests.blueprints.conftest import create_standalone, eventually
from tests.conftest import Optio
from tests.lifecycle_helpers import create_task, wait_for_log_text, wait_for_state

MakeRepo = Callable[..., Path]

WORKSPACE_SECRET = "ws-secret-9f8e7d6c5b4a"
REPO_SECRET = "repo-secret-0a1b2c3d4e5f"
USER_SECRET = "user-secret-5e6f7a8b9c0d"
AGENT_KEY = "sk-ant-settings-key-1234567890"  # injected by Optio from its settings
FORGE_TOKEN = "ghp_settingsforgetoken1234567"
LATE_SECRET = "late-secret-added-mid-run-42"  # created after the run's spec was made
PLAIN = "nothing-secret-here"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test's settings, holding credentials Optio injects into runs."""
    return settings.model_copy(
        update={"anthropic_api_key": SecretStr(AGENT_KEY), "github_token": SecretStr(FORGE_TOKEN)}
    )


async def store_secret(optio: Optio, name: str, value: str, scope: str | None = None) -> None:
    body: dict[str, Any] = {"name": name, "value": value}
    if scope is not None:
        body["scope"] = scope
    response = await optio.client.post("/api/secrets", json=body)
    assert response.status_code == 201, response.text


def split(value: str) -> str:
    """The value as bash prints it, without the value itself in the script (and so in the
    task's prompt): an agent would have found it somewhere, not been given it."""
    return f"'{value[:4]}''{value[4:]}'"


def leaked(text: str) -> list[str]:
    secrets = (WORKSPACE_SECRET, REPO_SECRET, USER_SECRET, AGENT_KEY, FORGE_TOKEN, LATE_SECRET)
    return [s for s in secrets if s in text]


async def test_a_script_printing_the_workspace_secrets_shows_them_masked(
    optio: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    url = f"file://{repo.resolve()}"
    await store_secret(optio, "OTHER_TOKEN", WORKSPACE_SECRET)
    await store_secret(optio, "REPO_TOKEN", REPO_SECRET, scope=url)
    await store_secret(optio, "MY_TOKEN", USER_SECRET, scope="user")
    script = (
        f"echo plain {PLAIN}\n"
        "echo work > out.txt\n"
        f"echo workspace {split(WORKSPACE_SECRET)} repo {split(REPO_SECRET)}\n"
        f"echo user {split(USER_SECRET)} >&2\n"
        f"echo agent key {split(AGENT_KEY)} forge {split(FORGE_TOKEN)}\n"
        # Created while the run is going: only the control plane's own layer knows it.
        "while [ ! -e .optio/go ]; do sleep 0.1; done\n"
        f"echo late {split(LATE_SECRET)}\n"
        f"echo summary {split(WORKSPACE_SECRET)}\n"
    )
    task = await create_task(optio.client, url, script, title="Leak")
    await wait_for_log_text(optio.client, task["id"], f"plain {PLAIN}")
    await store_secret(optio, "LATE_TOKEN", LATE_SECRET)
    (optio.settings.worktrees_dir / f"task-{task['id']}" / ".optio" / "go").touch()
    done = await wait_for_state(optio.client, task["id"], "pr_opened", "failed", "completed")
    assert done["task"]["state"] == "pr_opened", done["task"]

    text = await wait_for_log_text(optio.client, task["id"], "late ***", "summary ***")
    assert leaked(text) == [], text
    assert "workspace *** repo ***" in text and "user ***" in text
    assert "agent key *** forge ***" in text and f"plain {PLAIN}" in text

    task_after = (await optio.client.get(f"/api/tasks/{task['id']}")).json()
    assert task_after["task"]["resultSummary"] == "summary ***"
    assert leaked(str(task_after)) == []
    events = (await optio.client.get(f"/api/tasks/{task['id']}/events")).json()
    assert leaked(str(events)) == []
    # Masking read every value of the workspace; none of them was written to a file.
    for path in optio.settings.data_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert leaked(path.read_bytes().decode(errors="replace")) == [], path


async def test_a_standalone_script_run_is_masked_too(optio: Optio) -> None:
    await store_secret(optio, "OTHER_TOKEN", WORKSPACE_SECRET)
    job = await create_standalone(
        optio.client, prompt=f"echo key {split(AGENT_KEY)}\necho last {split(WORKSPACE_SECRET)}"
    )
    started = await optio.client.post(f"/api/tasks/{job['id']}/runs", json={"params": {}})
    assert started.status_code == 202, started.text
    run_id = started.json()["runId"]

    async def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = (
            await optio.client.get(f"/api/tasks/{job['id']}/runs/{run_id}")
        ).json()["run"]
        return run if run["state"] in ("completed", "failed") else None

    run = await eventually(finished, timeout=60)
    assert run["state"] == "completed", run
    assert run["output"] == {"summary": "last ***"}

    async def logs() -> list[str]:
        response = await optio.client.get(f"/api/tasks/{job['id']}/runs/{run_id}/logs")
        contents = [e["content"] for e in response.json()["logs"]]
        return contents if "last ***" in contents else []

    assert await eventually(logs) == ["key ***", "last ***"]


async def test_errors_and_events_written_by_activities_are_masked(
    optio: Optio, make_repo: MakeRepo
) -> None:
    """What a run reports as its error reaches the task row and its event masked."""
    await store_secret(optio, "OTHER_TOKEN", WORKSPACE_SECRET)
    # No automatic retry: the task must rest in `failed` for the transition below.
    task = await create_task(optio.client, make_repo(), "exit 3", title="Fails", maxRetries=0)
    await wait_for_state(optio.client, task["id"], "failed")
    engine = create_engine(optio.settings.database_url_resolved)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            seq = (await session.get(Task, task["id"])).transition_seq  # type: ignore[union-attr]
        activities = TaskActivities(settings=optio.settings, sessions=sessions)
        await activities.record_transition(
            TransitionInput(
                task_id=task["id"],
                seq=seq + 1,
                from_state="failed",
                to_state="failed",
                trigger="agent_failed",
                message=f"git said: fatal: auth {FORGE_TOKEN} / {WORKSPACE_SECRET}",
                patch=TaskPatch(result_summary=f"printed {AGENT_KEY}"),
                force=True,
            )
        )
        async with sessions() as session:
            row = await session.get(Task, task["id"])
            assert row is not None
            assert row.error_message == "git said: fatal: auth *** / ***"
            assert row.result_summary == "printed ***"
            messages = (
                await session.execute(
                    select(TaskEvent.message).where(TaskEvent.task_id == task["id"])
                )
            ).scalars()
            assert leaked(" ".join(m or "" for m in messages)) == []
            runs = (
                await session.execute(select(AgentRun).where(AgentRun.task_id == task["id"]))
            ).scalars()
            assert all(not leaked(r.error_message or "") for r in runs)
    finally:
        await engine.dispose()

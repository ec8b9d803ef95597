"""Crash safety of auto-merge: a worker killed between the merge and recording it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType

from api.task_commands import workflow_id
from core.names import pr_phase_workflow_id
from core.settings import Settings
from tests.conftest import Optio, free_port
from tests.e2e.test_crash_safety import WorkerProcess, running_worker
from tests.forges.conftest import HOOK_SECRET, OPTIO_TOKEN, serve
from tests.forges.git_http import git
from tests.forges.github_double import GitHubDouble
from tests.lifecycle_helpers import create_task, triggers, wait_for_state

MakeRepo = Callable[..., Path]

# The merge is a local activity (workflows/pr_phase.py, `_merge`): the workflow task that
# ran it is lost with the worker and, once its 10 s timeout has passed, the new worker
# runs the task again, merge included.
WORKFLOW_TASK_TIMEOUT = 10.0
RECOVERY_WAIT = WORKFLOW_TASK_TIMEOUT + 120.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.github_token = SecretStr(OPTIO_TOKEN)  # the in-process API's
    return settings


@pytest.fixture
async def github(tmp_path: Path) -> AsyncIterator[GitHubDouble]:
    double = GitHubDouble(tmp_path / "github", users={OPTIO_TOKEN: "optio-bot"})
    port = free_port()
    double.base_url = f"http://127.0.0.1:{port}"
    double.webhook_secret = HOOK_SECRET
    server, task = await serve(double.app, port)
    yield double
    server.should_exit = True
    await task


@pytest.fixture
async def worker(
    api_only: Optio, github: GitHubDouble, tmp_path: Path
) -> AsyncIterator[WorkerProcess]:
    # The worker process reads no OPTIO_GITHUB_TOKEN: it gets the token as a workspace secret.
    secret = {"name": "GITHUB_TOKEN", "value": OPTIO_TOKEN}
    response = await api_only.client.post("/api/secrets", json=secret)
    assert response.status_code == 201, response.text
    async with running_worker(api_only, tmp_path / "worker.log") as process:
        yield process


async def merge_steps(optio: Optio, task_id: str) -> list[str]:
    """How each merge in the task's workflow history ran: "local" for a local activity's
    marker, "activity" for a regular activity that was started."""
    events = []
    # The task's run and its PR phase (which merges). The row says completed while the
    # last workflow task still runs its last local activities; their markers are written
    # when that workflow task completes.
    for workflow in (workflow_id(task_id), pr_phase_workflow_id(workflow_id(task_id))):
        handle = optio.temporal.get_workflow_handle(workflow)
        await asyncio.wait_for(handle.result(), timeout=60)
        events += (await handle.fetch_history()).events
    scheduled: dict[int, str] = {}
    steps = []
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            details = event.marker_recorded_event_attributes.details
            payloads = details["data"].payloads if "data" in details else []
            if any(b'"activity_type":"merge_pull_request"' in p.data for p in payloads):
                steps.append("local")
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs_started = event.activity_task_started_event_attributes
            if scheduled.get(attrs_started.scheduled_event_id) == "merge_pull_request":
                steps.append("activity")
    return steps


@pytest.mark.timeout(RECOVERY_WAIT + 180)
async def test_worker_killed_between_merge_and_record_merges_once_completes_once(
    api_only: Optio, github: GitHubDouble, worker: WorkerProcess, make_repo: MakeRepo
) -> None:
    repo = github.add_repo("acme", "app", make_repo())
    repo.ci_command = "test -f f"
    killed = asyncio.Event()

    def kill_the_worker() -> None:
        # The merge is done on the forge; Optio never hears back and has recorded nothing.
        github.on_merge = None
        worker.kill()
        killed.set()

    github.on_merge = kill_the_worker
    url = github.clone_url(repo)
    body = {"repoUrl": url, "gitPlatform": "github", "forgeApiUrl": github.api_url}
    connected = await api_only.client.post("/api/repos", json={**body, "autoMerge": True})
    assert connected.status_code == 201, connected.text
    task = await create_task(api_only.client, url, "echo ok > f\necho 'done: wrote f'")

    await asyncio.wait_for(killed.wait(), timeout=120)
    assert worker.process is not None and worker.process.returncode is not None
    assert repo.pulls[1].merged
    state = (await api_only.client.get(f"/api/tasks/{task['id']}")).json()["task"]["state"]
    assert state == "pr_opened"  # the merge is not recorded yet
    killed_at = time.monotonic()
    await asyncio.sleep(1)
    worker.start()

    done = await wait_for_state(
        api_only.client, task["id"], "completed", "failed", timeout=RECOVERY_WAIT
    )
    recovered_in = time.monotonic() - killed_at
    assert done["task"]["state"] == "completed", done["task"]
    assert done["task"]["prNumber"] == 1 and done["task"]["prState"] == "merged"
    steps = await triggers(api_only.client, task["id"])
    assert steps.count(("completed", "auto_merged")) == 1, steps
    assert [s for s in steps if s[0] == "completed"] == [("completed", "auto_merged")], steps
    # The first worker's merge left no trace in the history: the one recorded is the new
    # worker's, which found the PR merged already.
    assert await merge_steps(api_only, task["id"]) == ["local"], recovered_in

    assert github.merges == 1 and len(repo.pulls) == 1
    assert repo.pulls[1].merged and repo.pulls[1].head == f"optio/task-{task['id']}"
    opened = [e for e, b in github.deliveries if e == "pull_request" and b["action"] == "opened"]
    assert len(opened) == 1  # no second PR, not even one closed again
    log = git(repo.path, "log", "--format=%s", "main").stdout.splitlines()
    assert len(log) == 2 and log[-1] == "initial commit", log  # one commit: the PR's
    assert git(repo.path, "log", "--format=%H", "main", "--", "f").stdout.count("\n") == 1
    assert git(repo.path, "show", "main:f").stdout == "ok\n"

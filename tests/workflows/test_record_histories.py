"""Records the histories replayed by test_replay.py; runs only when asked to."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError

from tests.conftest import Optio
from tests.lifecycle_helpers import (
    commit_unstarted_task,
    create_task,
    task_starts,
    wait_for_state,
)
from tests.workflows.test_replay import HISTORIES

MakeRepo = Callable[..., Path]

pytestmark = pytest.mark.skipif(
    os.environ.get("OPTIO_RECORD_HISTORIES") != "1", reason="records histories on request"
)


async def save(optio: Optio, workflow_id: str, scenario: str, *, ends: bool = True) -> None:
    handle = optio.temporal.get_workflow_handle(workflow_id)
    if ends:
        # The row shows the last state while that workflow task is still running its
        # last local activities: record the run as it ended, not half way through.
        with contextlib.suppress(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), timeout=30)
    history = await handle.fetch_history()
    kind = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
    HISTORIES.mkdir(exist_ok=True)
    # Histories of earlier code stay: a new recording goes beside them under a suffix.
    suffix = os.environ.get("OPTIO_RECORD_SUFFIX", "")
    name = f"{kind}__{scenario}{f'__{suffix}' if suffix else ''}.json"
    (HISTORIES / name).write_text(history.to_json())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_record(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    body = {"repoUrl": str(repo), "autoMerge": True, "testCommand": "! test -f bad.txt",
            "maxConcurrentTasks": 5}  # fmt: skip
    await optio.client.post("/api/repos", json=body)
    merged = await create_task(optio.client, repo, "echo merged > merged.txt")
    await wait_for_state(optio.client, merged["id"], "completed")
    await save(optio, f"task-{merged['id']}", "auto_merge")

    manual_repo = make_repo()
    manual = await create_task(optio.client, manual_repo, "echo two > two.txt")
    opened = (await wait_for_state(optio.client, manual["id"], "pr_opened"))["task"]
    await optio.client.post(
        "/api/pull-requests/merge", json={"prUrl": opened["prUrl"], "mergeMethod": "rebase"}
    )
    await wait_for_state(optio.client, manual["id"], "completed")
    await save(optio, f"task-{manual['id']}", "manual_merge")

    fixed = await create_task(optio.client, repo, "echo bad > bad.txt")
    await wait_for_state(optio.client, fixed["id"], "needs_attention")
    await optio.client.post(
        f"/api/tasks/{fixed['id']}/resume", json={"prompt": "rm bad.txt; echo ok > ok.txt"}
    )
    await wait_for_state(optio.client, fixed["id"], "completed")
    await save(optio, f"task-{fixed['id']}", "ci_fails_then_resume")

    flaky = await create_task(optio.client, manual_repo, "exit 2", maxRetries=1)
    await wait_for_state(optio.client, flaky["id"], "failed")
    await optio.client.post(f"/api/tasks/{flaky['id']}/retry")  # skips the backoff
    for _ in range(200):
        steps = (await optio.client.get(f"/api/tasks/{flaky['id']}/events")).json()["events"]
        if sum(1 for e in steps if e["trigger"] == "agent_failure") == 2:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)
    await save(optio, f"task-{flaky['id']}", "retries_then_fails")

    blocker = await create_task(optio.client, manual_repo, "sleep 2\necho b > b.txt")
    waiting = await create_task(
        optio.client, manual_repo, "echo w > w.txt", dependsOn=[blocker["id"]]
    )
    await wait_for_state(optio.client, waiting["id"], "waiting_on_deps", "queued")
    cancel_me = await create_task(optio.client, manual_repo, "sleep 60")
    await wait_for_state(optio.client, cancel_me["id"], "running")
    await optio.client.post(f"/api/tasks/{cancel_me['id']}/cancel")
    await wait_for_state(optio.client, cancel_me["id"], "cancelled")
    await save(optio, f"task-{cancel_me['id']}", "cancelled_while_running")
    await wait_for_state(optio.client, blocker["id"], "pr_opened")
    await optio.client.post(f"/api/tasks/{blocker['id']}/cancel")
    await wait_for_state(optio.client, waiting["id"], "failed")
    await save(optio, f"task-{waiting['id']}", "dependency_failed")

    parent = await create_task(optio.client, repo, "echo p > p.txt")
    for n in range(2):
        await optio.client.post(
            f"/api/tasks/{parent['id']}/subtasks",
            json={"title": f"step {n}", "prompt": f"echo {n} > s{n}.txt", "taskType": "step",
                  "blocksParent": True},
        )  # fmt: skip
    await wait_for_state(optio.client, parent["id"], "completed", timeout=120)
    await save(optio, f"task-{parent['id']}", "pipeline_parent")
    await save(optio, f"pipeline-{parent['id']}", "two_steps")
    await save(optio, f"limiter-global-{optio.settings.task_queue}", "global", ends=False)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_record_cancel_before_load(optio: Optio, make_repo: MakeRepo) -> None:
    """A cancel that reaches the workflow before it loaded its task (`cancel-before-load`).

    It races the workflow's first task: when the load wins, the task is loaded before
    the cancel request in the history, the check fails and nothing is saved; run it again."""
    from store.db import create_engine, session_factory

    engine = create_engine(optio.settings.database_url_resolved)
    try:
        sessions = session_factory(engine)
        task = await commit_unstarted_task(sessions, optio, make_repo(), "sleep 30")
        await task_starts(optio, sessions).ensure_started(task)
        await optio.temporal.get_workflow_handle(f"task-{task.id}").cancel()
        await wait_for_state(optio.client, task.id, "cancelled")
    finally:
        await engine.dispose()
    await asyncio.sleep(1)
    history = await optio.temporal.get_workflow_handle(f"task-{task.id}").fetch_history()
    cancel_at = next(
        i
        for i, event in enumerate(history.events)
        if event.HasField("workflow_execution_cancel_requested_event_attributes")
    )
    # The task is loaded only after the cancel arrived: the path under test was taken.
    markers_after = [
        payload.data
        for event in history.events[cancel_at:]
        if event.HasField("marker_recorded_event_attributes")
        for details in event.marker_recorded_event_attributes.details.values()
        for payload in details.payloads
    ]
    assert any(b'"activity_type":"load_task"' in data for data in markers_after), markers_after
    await save(optio, f"task-{task.id}", "cancel_before_load")

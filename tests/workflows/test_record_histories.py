"""Records the histories replayed by test_replay.py; runs only when asked to."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionDescription, WorkflowFailureError
from temporalio.service import RPCError

from core.names import Signals
from schemas.workflow import PrEvent
from tests.conftest import Optio
from tests.lifecycle_helpers import (
    commit_unstarted_task,
    create_task,
    task_starts,
    wait_for_state,
)
from tests.workflows.test_replay import HISTORIES, RECORDED_WATCH_ROUNDS

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


async def save_task(optio: Optio, task_id: str, scenario: str) -> None:
    """The task's run and, when it reached a PR, its PR phase (the phase's last run)."""
    await save(optio, f"task-{task_id}", scenario)
    phase = optio.temporal.get_workflow_handle(f"task-{task_id}-pr")
    with contextlib.suppress(RPCError):
        await phase.describe()
        await save(optio, phase.id, scenario)


async def phase_started(optio: Optio, task_id: str) -> WorkflowExecutionDescription:
    """The row says pr_opened a moment before the task's run starts its PR phase."""
    for _ in range(300):
        with contextlib.suppress(RPCError):
            return await optio.temporal.get_workflow_handle(f"task-{task_id}-pr").describe()
        await asyncio.sleep(0.1)
    raise AssertionError("the PR phase never started")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_record(optio: Optio, make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two rounds per PR phase run (test_replay replays with as many): two webhooks make
    # the manual merge's phase continue as new.
    monkeypatch.setattr("workflows.pr_phase.MAX_WATCH_ROUNDS", RECORDED_WATCH_ROUNDS)
    repo = make_repo()
    body = {"repoUrl": str(repo), "autoMerge": True, "testCommand": "! test -f bad.txt",
            "maxConcurrentTasks": 5}  # fmt: skip
    await optio.client.post("/api/repos", json=body)
    merged = await create_task(optio.client, repo, "echo merged > merged.txt")
    await wait_for_state(optio.client, merged["id"], "completed")
    await save_task(optio, merged["id"], "auto_merge")

    manual_repo = make_repo()
    manual = await create_task(optio.client, manual_repo, "echo two > two.txt")
    opened = (await wait_for_state(optio.client, manual["id"], "pr_opened"))["task"]
    first_phase = await phase_started(optio, manual["id"])
    for n in range(2):
        await optio.temporal.get_workflow_handle(f"task-{manual['id']}").signal(
            Signals.PR_EVENT, PrEvent(kind="pull_request", delivery_id=f"d{n}")
        )
    for _ in range(300):
        if (await optio.temporal.get_workflow_handle(first_phase.id).describe()).run_id != (
            first_phase.run_id
        ):
            break
        await asyncio.sleep(0.1)
    await optio.client.post(
        "/api/pull-requests/merge", json={"prUrl": opened["prUrl"], "mergeMethod": "rebase"}
    )
    await wait_for_state(optio.client, manual["id"], "completed")
    await save_task(optio, manual["id"], "manual_merge")
    history = await optio.temporal.get_workflow_handle(
        first_phase.id, run_id=first_phase.run_id
    ).fetch_history()
    assert history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    suffix = os.environ.get("OPTIO_RECORD_SUFFIX", "")
    name = f"PrPhaseWorkflow__continued_as_new{f'__{suffix}' if suffix else ''}.json"
    (HISTORIES / name).write_text(history.to_json())

    fixed = await create_task(optio.client, repo, "echo bad > bad.txt")
    await wait_for_state(optio.client, fixed["id"], "needs_attention")
    await optio.client.post(
        f"/api/tasks/{fixed['id']}/resume", json={"prompt": "rm bad.txt; echo ok > ok.txt"}
    )
    await wait_for_state(optio.client, fixed["id"], "completed")
    await save_task(optio, fixed["id"], "ci_fails_then_resume")

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
    await save_task(optio, parent["id"], "pipeline_parent")
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

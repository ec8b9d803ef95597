"""Concurrency limits, queue order, pending reasons and what the Temporal UI can filter on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from tests.conftest import Optio
from tests.lifecycle_helpers import create_task, triggers, wait_for_state

MakeRepo = Callable[..., Path]


async def picked_up_at(optio: Optio, task_id: str) -> datetime:
    events = (await optio.client.get(f"/api/tasks/{task_id}/events")).json()["events"]
    stamp = next(e["createdAt"] for e in events if e["trigger"] == "worker_pickup")
    return datetime.fromisoformat(stamp)


async def wait_for_reason(optio: Optio, task_id: str, reason: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(100):
        body = (await optio.client.get(f"/api/tasks/{task_id}")).json()
        if body["pendingReason"] == reason:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"pendingReason never became {reason!r}: {body}")


async def test_global_limit_queues_with_a_reason(optio: Optio, make_repo: MakeRepo) -> None:
    optio.settings.max_concurrent = 1  # the worker reads it when loading each task
    repo = make_repo()
    first = await create_task(optio.client, repo, "sleep 60")
    await wait_for_state(optio.client, first["id"], "running")
    second = await create_task(optio.client, repo, "echo b > b")
    body = await wait_for_reason(optio, second["id"], "Concurrency limit (1/1 global)")
    assert body["task"]["state"] == "queued"
    await optio.client.post(f"/api/tasks/{first['id']}/cancel")  # frees the slot
    await wait_for_state(optio.client, second["id"], "pr_opened", timeout=60)


async def test_repo_limit_queues_with_a_reason(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    await optio.client.post("/api/repos", json={"repoUrl": str(repo), "maxConcurrentTasks": 1})
    first = await create_task(optio.client, repo, "sleep 60")
    await wait_for_state(optio.client, first["id"], "running")
    second = await create_task(optio.client, repo, "echo b > b")
    await wait_for_reason(optio, second["id"], "Waiting for repo slot (1 running in this repo)")
    # Another repo is not held back by this one's limit.
    other = await create_task(optio.client, make_repo(), "echo c > c")
    await wait_for_state(optio.client, other["id"], "pr_opened", timeout=60)
    assert (await optio.client.get(f"/api/tasks/{second['id']}")).json()["task"]["state"] == (
        "queued"
    )
    await optio.client.post(f"/api/tasks/{first['id']}/cancel")  # frees the repo's slot
    await wait_for_state(optio.client, second["id"], "pr_opened", timeout=60)


async def test_lower_priority_number_starts_first(optio: Optio, make_repo: MakeRepo) -> None:
    optio.settings.max_concurrent = 1
    repo = make_repo()
    await optio.client.post("/api/repos", json={"repoUrl": str(repo), "maxConcurrentTasks": 5})
    blocker = await create_task(optio.client, repo, "sleep 60")
    await wait_for_state(optio.client, blocker["id"], "running")
    late = await create_task(optio.client, repo, "echo l > l", priority=500)
    urgent = await create_task(optio.client, repo, "echo u > u", priority=5)
    for task in (late, urgent):
        await wait_for_state(optio.client, task["id"], "queued")
    await optio.client.post(f"/api/tasks/{blocker['id']}/cancel")  # frees the slot
    await wait_for_state(optio.client, urgent["id"], "pr_opened", timeout=60)
    await wait_for_state(optio.client, late["id"], "pr_opened", timeout=60)
    assert await picked_up_at(optio, urgent["id"]) < await picked_up_at(optio, late["id"])


async def test_patch_priority_reorders_the_queue(optio: Optio, make_repo: MakeRepo) -> None:
    optio.settings.max_concurrent = 1
    repo = make_repo()
    await optio.client.post("/api/repos", json={"repoUrl": str(repo), "maxConcurrentTasks": 5})
    blocker = await create_task(optio.client, repo, "sleep 60")
    await wait_for_state(optio.client, blocker["id"], "running")
    first = await create_task(optio.client, repo, "echo f > f", priority=100)
    second = await create_task(optio.client, repo, "echo s > s", priority=100)
    await wait_for_state(optio.client, first["id"], "queued")
    await wait_for_state(optio.client, second["id"], "queued")
    patched = await optio.client.patch(f"/api/tasks/{second['id']}", json={"priority": 1})
    assert patched.json()["task"]["priority"] == 1
    await optio.client.post(f"/api/tasks/{blocker['id']}/cancel")  # frees the slot
    await wait_for_state(optio.client, second["id"], "pr_opened", timeout=60)
    await wait_for_state(optio.client, first["id"], "pr_opened", timeout=60)
    assert await picked_up_at(optio, second["id"]) < await picked_up_at(optio, first["id"])


async def test_search_attributes_filter_tasks(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo x > x")
    await wait_for_state(optio.client, task["id"], "pr_opened")
    query = (
        f"TaskQueue = '{optio.settings.task_queue}' AND OptioTaskState = 'pr_opened' "
        f"AND OptioAgent = 'script' AND OptioTaskType = 'repo-task'"
    )
    for _ in range(50):  # visibility is eventually consistent
        found = [e.id async for e in optio.temporal.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.1)
    assert found == [f"task-{task['id']}"]


async def task_histories(optio: Optio, task_id: str) -> tuple[WorkflowHistory, WorkflowHistory]:
    """The task's run and its PR phase, once both ended (the row says completed while the
    run's last workflow task still records its last steps)."""
    histories = []
    for workflow_id in (f"task-{task_id}", f"task-{task_id}-pr"):
        handle = optio.temporal.get_workflow_handle(workflow_id)
        await asyncio.wait_for(handle.result(), timeout=30)
        histories.append(await handle.fetch_history())
    return histories[0], histories[1]


async def test_history_is_small_and_names_its_steps(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    # With a testCommand the PR is watched while its checks run (without one, opening
    # the PR tells all there is to know and no watch round is needed).
    body = {"repoUrl": str(repo), "autoMerge": True, "testCommand": "true"}
    await optio.client.post("/api/repos", json=body)
    big_output = 'for i in $(seq 1 2000); do echo "line $i of plenty of agent output"; done'
    task = await create_task(optio.client, repo, f"{big_output}\necho x > x")
    await wait_for_state(optio.client, task["id"], "completed")
    run, phase = await task_histories(optio, task["id"])
    events = [*run.events, *phase.events]
    names = {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    # Quick database steps are local activities: the UI shows them as markers that name
    # their activity type.
    for e in events:
        marker = e.marker_recorded_event_attributes
        if e.HasField("marker_recorded_event_attributes") and "data" in marker.details:
            names.add(json.loads(marker.details["data"].payloads[0].data)["activity_type"])
    assert {
        "load_task",
        "record_transition",
        "prepare_worktree",
        "run_agent",
        "open_pull_request",
        "watch_pull_request",
        "merge_pull_request",
    } <= names
    for history in (run, phase):
        assert len(history.to_json()) < 100_000  # logs never travel through Temporal
        assert "plenty of agent output" not in history.to_json()
    # Printed for docs/temporal.md (run with -s): the events of one auto-merged task.
    print(f"\nauto-merged task with checks: {len(run.events)} + {len(phase.events)} events")


async def test_pr_without_checks_is_decided_without_a_watch_round(
    optio: Optio, make_repo: MakeRepo
) -> None:
    """Opening a PR with no testCommand tells all there is to know: the run merges it at
    once, and its only regular activities are the agent's (fewer-round-trips patch)."""
    repo = make_repo()
    await optio.client.post("/api/repos", json={"repoUrl": str(repo), "autoMerge": True})
    task = await create_task(optio.client, repo, "echo x > x")
    await wait_for_state(optio.client, task["id"], "completed")
    run, phase = await task_histories(optio, task["id"])
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in [*run.events, *phase.events]
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled == ["prepare_worktree", "run_agent"]
    print(f"\nauto-merged task without checks: {len(run.events)} + {len(phase.events)} events")
    assert (await triggers(optio.client, task["id"]))[-2:] == [
        ("pr_opened", "pr_detected"),
        ("completed", "auto_merged"),
    ]

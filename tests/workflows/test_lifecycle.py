"""A repo task from prompt to merged branch, on the real Temporal dev server and real git."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Optio, free_port, git
from tests.lifecycle_helpers import (
    create_task,
    file_on_branch,
    triggers,
    wait_for_logs,
    wait_for_state,
)

MakeRepo = Callable[..., Path]


async def connect(optio: Optio, repo: Path, **settings: object) -> None:
    response = await optio.client.post("/api/repos", json={"repoUrl": str(repo), **settings})
    assert response.status_code == 201, response.text


async def test_auto_merge_takes_a_task_to_completed(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    await connect(optio, repo, autoMerge=True)
    task = await create_task(
        optio.client, repo, "echo 'working'\necho ok > f\necho 'done: wrote f'"
    )
    assert task["type"] == "repo-task" and task["agentType"] == "script"
    done = (await wait_for_state(optio.client, task["id"], "completed"))["task"]
    assert done["prState"] == "merged" and done["prNumber"] == 1
    assert done["prUrl"] == f"file://{repo.resolve()}/pull/1"
    assert done["resultSummary"] == "done: wrote f"
    assert await triggers(optio.client, task["id"]) == [
        ("queued", "task_submitted"),
        ("provisioning", "worker_pickup"),
        ("running", "worktree_created"),
        ("pr_opened", "pr_detected"),
        ("completed", "auto_merged"),
    ]
    assert file_on_branch(repo, "main", "f") == "ok"
    await wait_for_logs(optio.client, task["id"], ["working", "done: wrote f"])
    found = await optio.client.get(f"/api/tasks/{task['id']}/logs", params={"search": "done"})
    assert [entry["content"] for entry in found.json()["logs"]] == ["done: wrote f"]


async def test_without_auto_merge_the_pr_waits_for_a_merge(
    optio: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo change > feature.txt")
    opened = (await wait_for_state(optio.client, task["id"], "pr_opened"))["task"]
    assert opened["prState"] == "open" and opened["prChecksStatus"] in (None, "none")
    assert file_on_branch(repo, "main", "feature.txt") is None
    assert file_on_branch(repo, f"optio/task-{task['id']}", "feature.txt") == "change"

    body = {"prUrl": opened["prUrl"], "mergeMethod": "merge"}
    merged = await optio.client.post("/api/pull-requests/merge", json=body)
    assert merged.status_code == 200, merged.text
    assert merged.json()["task"]["state"] == "completed"
    assert file_on_branch(repo, "main", "feature.txt") == "change"
    parents = git("log", "-1", "--format=%P", "main", cwd=repo).split()
    assert len(parents) == 2  # a real merge commit
    again = await optio.client.post("/api/pull-requests/merge", json=body)
    assert again.status_code == 200  # safe to retry
    assert (await triggers(optio.client, task["id"]))[-1] == ("completed", "pr_merged")
    unknown = await optio.client.post(
        "/api/pull-requests/merge", json={"prUrl": "file:///nope/pull/1"}
    )
    assert unknown.status_code == 404


async def test_failing_ci_needs_attention_then_resume_fixes_it(
    optio: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    await connect(optio, repo, autoMerge=True, testCommand='test "$(cat answer)" = 42')
    task = await create_task(optio.client, repo, "echo 41 > answer")
    attention = (await wait_for_state(optio.client, task["id"], "needs_attention"))["task"]
    assert attention["prChecksStatus"] == "failing"
    assert (await triggers(optio.client, task["id"]))[-1] == ("needs_attention", "ci_failing")

    resumed = await optio.client.post(
        f"/api/tasks/{task['id']}/resume", json={"prompt": "echo 42 > answer"}
    )
    assert resumed.status_code == 200, resumed.text
    done = (await wait_for_state(optio.client, task["id"], "completed"))["task"]
    assert done["prNumber"] == 1  # the same PR, updated; never a second one
    assert file_on_branch(repo, "main", "answer") == "42"
    steps = await triggers(optio.client, task["id"])
    assert ("queued", "user_resume") in steps
    assert steps[-1] == ("completed", "auto_merged")


async def test_agent_failure_fails_and_retry_starts_a_new_run(
    optio: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo broken >&2; exit 3", maxRetries=0)
    failed = (await wait_for_state(optio.client, task["id"], "failed"))["task"]
    assert failed["errorMessage"] == "Script exited with code 3"
    assert (await triggers(optio.client, task["id"]))[-1] == ("failed", "agent_failure")

    bad = await optio.client.post(f"/api/tasks/{task['id']}/cancel")
    assert bad.status_code == 409
    assert bad.json() == {"error": "Invalid state transition: failed -> cancelled"}

    retried = await optio.client.post(f"/api/tasks/{task['id']}/retry")
    assert retried.status_code == 200, retried.text
    await wait_for_state(optio.client, task["id"], "failed")
    steps = await triggers(optio.client, task["id"])
    assert steps.count(("failed", "agent_failure")) == 2
    assert ("queued", "user_retry") in steps
    again = (await optio.client.get(f"/api/tasks/{task['id']}")).json()["task"]
    assert again["retryCount"] == 1
    handle = optio.temporal.get_workflow_handle(f"task-{task['id']}")
    runs = [e async for e in optio.temporal.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) == 2  # every attempt under one workflow id


async def test_automatic_retries_follow_max_retries(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "exit 1", maxRetries=1)
    await wait_for_state(optio.client, task["id"], "failed")
    steps = await wait_until_count(optio, task["id"], ("failed", "agent_failure"), 2)
    assert ("queued", "auto_retry") in steps


async def wait_until_count(
    optio: Optio, task_id: str, step: tuple[str, str], count: int
) -> list[tuple[str, str]]:
    import asyncio

    for _ in range(300):
        steps = await triggers(optio.client, task_id)
        if steps.count(step) >= count:
            return steps
        await asyncio.sleep(0.1)
    raise AssertionError(f"{step} seen fewer than {count} times: {steps}")


async def test_cancel_stops_the_agent(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo started\nsleep 60\necho never > f")
    await wait_for_state(optio.client, task["id"], "running")
    cancelled = await optio.client.post(f"/api/tasks/{task['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["task"]["state"] == "cancelled"
    assert (await triggers(optio.client, task["id"]))[-1] == ("cancelled", "user_cancel")
    again = await optio.client.post(f"/api/tasks/{task['id']}/cancel")
    assert again.status_code == 200  # retrying a cancel is harmless
    assert file_on_branch(repo, f"optio/task-{task['id']}", "f") is None
    assert not any(_agent_alive(run) for run in optio.settings.runs_dir.iterdir())


def _agent_alive(run_dir: Path) -> bool:
    import json
    import os

    progress = run_dir / "progress.json"
    if not progress.exists():
        return False
    pid = json.loads(progress.read_text()).get("agentPid")
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


async def test_stall_fails_the_run(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    await connect(optio, repo, stallThresholdMs=1000)
    task = await create_task(optio.client, repo, "sleep 60", maxRetries=0)
    failed = (await wait_for_state(optio.client, task["id"], "failed", timeout=30))["task"]
    assert failed["errorMessage"].startswith("No agent output for")
    assert (await triggers(optio.client, task["id"]))[-1] == ("failed", "stall_detected")


async def test_agent_without_adapter_fails_clearly(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "Add a README", agentType="openclaw", maxRetries=0)
    failed = (await wait_for_state(optio.client, task["id"], "failed"))["task"]
    assert failed["errorMessage"] == (
        "Agent type 'openclaw' is accepted but its adapter is not available yet"
    )
    assert (await triggers(optio.client, task["id"]))[-1] == (
        "failed",
        "provisioning_permanent_failure",
    )


async def test_no_changes_needs_attention(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo nothing to do")
    attention = (await wait_for_state(optio.client, task["id"], "needs_attention"))["task"]
    assert "no changes" in attention["errorMessage"]
    assert (await triggers(optio.client, task["id"]))[-1] == (
        "needs_attention",
        "completed_without_pr",
    )


async def test_force_redo_wipes_and_runs_again(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo hello\necho one > f")
    await wait_for_state(optio.client, task["id"], "pr_opened")
    redo = await optio.client.post(f"/api/tasks/{task['id']}/force-redo")
    assert redo.status_code == 200, redo.text
    reopened = (await wait_for_state(optio.client, task["id"], "pr_opened"))["task"]
    assert reopened["prNumber"] == 2  # the first PR was closed with the branch wiped
    steps = await triggers(optio.client, task["id"])
    assert ("queued", "force_redo") in steps
    # The first run's "hello" is gone; the second run's arrives.
    await wait_for_logs(optio.client, task["id"], ["hello"])


async def test_force_restart_from_pr_opened(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo one > f")
    await wait_for_state(optio.client, task["id"], "pr_opened")
    restarted = await optio.client.post(
        f"/api/tasks/{task['id']}/force-restart", json={"prompt": "echo two >> f"}
    )
    assert restarted.status_code == 200, restarted.text
    await wait_until_count(optio, task["id"], ("pr_opened", "pr_detected"), 2)
    assert file_on_branch(repo, f"optio/task-{task['id']}", "f") == "one\ntwo"
    assert ("queued", "force_restart") in await triggers(optio.client, task["id"])


async def test_resume_is_refused_outside_its_states(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo one > f")
    await wait_for_state(optio.client, task["id"], "pr_opened")
    refused = await optio.client.post(f"/api/tasks/{task['id']}/resume", json={})
    assert refused.status_code == 409
    assert refused.json() == {"error": "Invalid state transition: pr_opened -> queued"}
    retry = await optio.client.post(f"/api/tasks/{task['id']}/retry")
    assert retry.status_code == 409


async def test_delete_cancels_a_live_task(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "sleep 60")
    await wait_for_state(optio.client, task["id"], "running")
    assert (await optio.client.delete(f"/api/tasks/{task['id']}")).status_code == 204
    assert (await optio.client.get(f"/api/tasks/{task['id']}")).status_code == 404
    handle = optio.temporal.get_workflow_handle(f"task-{task['id']}")
    assert (await handle.describe()).status is not None
    assert not any(_agent_alive(run) for run in optio.settings.runs_dir.iterdir())


async def test_unreachable_remote_fails_provisioning_clearly(optio: Optio) -> None:
    task = await create_task(
        optio.client, f"http://127.0.0.1:{free_port()}/nothing.git", "echo x > x", maxRetries=0
    )
    failed = (await wait_for_state(optio.client, task["id"], "failed", timeout=90))["task"]
    assert "127.0.0.1" in failed["errorMessage"]
    assert (await triggers(optio.client, task["id"]))[-1] == (
        "failed",
        "provisioning_permanent_failure",
    )


async def test_a_person_can_resume_from_the_temporal_cli(optio: Optio, make_repo: MakeRepo) -> None:
    import asyncio
    import sys

    repo = make_repo()
    task = await create_task(optio.client, repo, "echo nothing to change")
    await wait_for_state(optio.client, task["id"], "needs_attention")
    # Async: the worker shares this event loop, so a blocking call would starve it.
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "temporal"),
        "workflow", "update", "execute",
        "--address", optio.settings.temporal_target,
        "--workflow-id", f"task-{task['id']}",
        "--name", "resume",
        "--input", '{"prompt": "echo fixed > fixed.txt"}',
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    await wait_for_state(optio.client, task["id"], "pr_opened")
    assert file_on_branch(repo, f"optio/task-{task['id']}", "fixed.txt") == "fixed"


async def test_finished_tasks_leave_no_worktree(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    await connect(optio, repo, autoMerge=True)
    done = await create_task(optio.client, repo, "echo x > x")
    cancelled = await create_task(optio.client, repo, "sleep 60")
    await wait_for_state(optio.client, done["id"], "completed")
    await wait_for_state(optio.client, cancelled["id"], "running")
    await optio.client.post(f"/api/tasks/{cancelled['id']}/cancel")
    for _ in range(100):
        left = [p.name for p in optio.settings.worktrees_dir.iterdir()]
        if not left:
            break
        await asyncio.sleep(0.1)
    assert left == []

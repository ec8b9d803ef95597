"""The task graph: dependencies, pipelines, reorder, bulk, comments, messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conftest import Optio
from tests.lifecycle_helpers import Gate, create_task, triggers, wait_for_state, wait_for_states

MakeRepo = Callable[..., Path]


async def event_time(optio: Optio, task_id: str, trigger: str) -> datetime:
    events = (await optio.client.get(f"/api/tasks/{task_id}/events")).json()["events"]
    stamp = next(e["createdAt"] for e in events if e["trigger"] == trigger)
    return datetime.fromisoformat(stamp)


async def auto_merge_repo(optio: Optio, make_repo: MakeRepo, **settings: Any) -> Path:
    repo = make_repo()
    body = {"repoUrl": str(repo), "autoMerge": True, "maxConcurrentTasks": 10, **settings}
    assert (await optio.client.post("/api/repos", json=body)).status_code == 201
    return repo


async def test_diamond_runs_in_dependency_order(optio: Optio, make_repo: MakeRepo) -> None:
    repo = await auto_merge_repo(optio, make_repo)
    a = await create_task(optio.client, repo, "sleep 1\necho a > a")
    b = await create_task(optio.client, repo, "echo b > b", dependsOn=[a["id"]])
    c = await create_task(optio.client, repo, "echo c > c", dependsOn=[a["id"]])
    d = await create_task(optio.client, repo, "echo d > d", dependsOn=[b["id"], c["id"]])
    waiting = (await optio.client.get(f"/api/tasks/{d['id']}")).json()["task"]
    assert waiting["state"] in ("pending", "waiting_on_deps")
    await wait_for_state(optio.client, d["id"], "completed", timeout=120)
    a_done = await event_time(optio, a["id"], "auto_merged")
    for middle in (b, c):
        assert await event_time(optio, middle["id"], "dependencies_met") >= a_done
    d_start = await event_time(optio, d["id"], "dependencies_met")
    assert d_start >= await event_time(optio, b["id"], "auto_merged")
    assert d_start >= await event_time(optio, c["id"], "auto_merged")
    assert (await triggers(optio.client, d["id"]))[:2] == [
        ("waiting_on_deps", "task_submitted_with_deps"),
        ("queued", "dependencies_met"),
    ]
    deps = (await optio.client.get(f"/api/tasks/{d['id']}/dependencies")).json()
    assert {x["id"] for x in deps["dependencies"]} == {b["id"], c["id"]}
    dependents = (await optio.client.get(f"/api/tasks/{a['id']}/dependents")).json()
    assert {x["id"] for x in dependents["dependents"]} == {b["id"], c["id"]}


async def test_cycles_self_and_unknown_are_refused(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    blocker = await create_task(optio.client, repo, "sleep 60")
    a = await create_task(optio.client, repo, "echo a > a", dependsOn=[blocker["id"]])
    b = await create_task(optio.client, repo, "echo b > b", dependsOn=[a["id"]])
    await wait_for_state(optio.client, b["id"], "waiting_on_deps")
    cycle = await optio.client.post(
        f"/api/tasks/{a['id']}/dependencies", json={"dependsOnIds": [b["id"]]}
    )
    assert cycle.status_code == 400
    assert (
        cycle.json()["error"]
        == f"Circular dependency detected: {a['id']} -> {b['id']} -> {a['id']}"
    )
    itself = await optio.client.post(
        f"/api/tasks/{a['id']}/dependencies", json={"dependsOnIds": [a["id"]]}
    )
    assert itself.status_code == 400
    unknown = await optio.client.post(
        f"/api/tasks/{a['id']}/dependencies",
        json={"dependsOnIds": ["00000000-0000-0000-0000-000000000000"]},
    )
    assert unknown.status_code == 404
    body = {"title": "t", "prompt": "x", "repoUrl": str(repo), "agentType": "script",
            "dependsOn": ["00000000-0000-0000-0000-000000000000"]}  # fmt: skip
    assert (await optio.client.post("/api/tasks", json=body)).status_code == 404
    listed = (await optio.client.get("/api/tasks")).json()["tasks"]
    assert len(listed) == 3  # nothing created by the refused request
    # Removing the blocking edge lets `a` start at once.
    removed = await optio.client.delete(f"/api/tasks/{a['id']}/dependencies/{blocker['id']}")
    assert removed.status_code == 204
    await wait_for_state(optio.client, a["id"], "pr_opened", timeout=60)


async def test_failure_cascades_two_levels(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    a = await create_task(optio.client, repo, "sleep 1; exit 1", maxRetries=0)
    b = await create_task(optio.client, repo, "echo b > b", dependsOn=[a["id"]])
    c = await create_task(optio.client, repo, "echo c > c", dependsOn=[b["id"]])
    failed = (await wait_for_state(optio.client, c["id"], "failed", timeout=60))["task"]
    assert failed["errorMessage"] == "Dependency failed: Test task"
    for task in (b, c):
        assert (await triggers(optio.client, task["id"]))[-1] == ("failed", "dependency_failed")


async def test_pipeline_step_fails_is_resumed_and_parent_completes(
    optio: Optio, make_repo: MakeRepo
) -> None:
    repo = await auto_merge_repo(optio, make_repo)
    # No automatic retries (steps take the parent's): the failed step stays failed, rather
    # than waiting in queued for its next attempt.
    parent = await create_task(optio.client, repo, "echo p > p", maxRetries=0)
    steps = []
    for n, script in enumerate(["echo 1 > s1", "exit 1", "echo 3 > s3"], start=1):
        created = await optio.client.post(
            f"/api/tasks/{parent['id']}/subtasks",
            json={"title": f"step {n}", "prompt": script, "taskType": "step",
                  "blocksParent": True},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        steps.append(created.json()["subtask"])
    assert [s["subtaskOrder"] for s in steps] == [0, 1, 2]
    await wait_for_state(optio.client, steps[1]["id"], "failed", timeout=90)
    assert (await optio.client.get(f"/api/tasks/{steps[2]['id']}")).json()["task"]["state"] == (
        "pending"
    )  # the chain stops at the failed step
    assert (await optio.client.get(f"/api/tasks/{parent['id']}")).json()["task"]["state"] == (
        "pr_opened"
    )  # blocking steps hold the parent's auto-merge
    status = (await optio.client.get(f"/api/tasks/{parent['id']}/subtasks/status")).json()
    assert status == {"allComplete": False, "total": 3, "pending": 1, "running": 0,
                      "completed": 1, "failed": 1}  # fmt: skip

    resumed = await optio.client.post(
        f"/api/tasks/{steps[1]['id']}/resume", json={"prompt": "echo 2 > s2"}
    )
    assert resumed.status_code == 200, resumed.text
    done = (await wait_for_state(optio.client, parent["id"], "completed", timeout=120))["task"]
    assert done["prState"] == "merged"
    assert (await triggers(optio.client, parent["id"]))[-1] == ("completed", "all_steps_complete")
    step3 = await event_time(optio, steps[2]["id"], "task_submitted")
    assert step3 >= await event_time(optio, steps[1]["id"], "auto_merged")
    listed = (await optio.client.get(f"/api/tasks/{parent['id']}/subtasks")).json()["subtasks"]
    assert [s["state"] for s in listed] == ["completed"] * 3


async def test_reorder_changes_who_starts_next(optio: Optio, make_repo: MakeRepo) -> None:
    optio.settings.max_concurrent = 1
    repo = make_repo()
    await optio.client.post("/api/repos", json={"repoUrl": str(repo), "maxConcurrentTasks": 10})
    blocker = await create_task(optio.client, repo, "sleep 60")
    await wait_for_state(optio.client, blocker["id"], "running")
    queued = [await create_task(optio.client, repo, f"echo {n} > f{n}") for n in range(5)]
    for task in queued:
        await wait_for_state(optio.client, task["id"], "queued")
    order = [queued[4]["id"], *(t["id"] for t in queued[:4])]
    response = await optio.client.post("/api/tasks/reorder", json={"taskIds": order})
    assert response.json() == {"ok": True, "reordered": 5}
    await optio.client.post(f"/api/tasks/{blocker['id']}/cancel")  # frees the one slot
    await wait_for_state(optio.client, queued[4]["id"], "running", "pr_opened", timeout=60)
    # Once it has its PR the slot goes to the next one: compare when each was picked up.
    pickups = {}
    for task in queued:
        events = (await optio.client.get(f"/api/tasks/{task['id']}/events")).json()["events"]
        times = [e["createdAt"] for e in events if e["trigger"] == "worker_pickup"]
        if times:
            pickups[task["id"]] = min(times)
    assert min(pickups, key=lambda i: pickups[i]) == queued[4]["id"], pickups
    priorities = [
        (await optio.client.get(f"/api/tasks/{i}")).json()["task"]["priority"] for i in order
    ]
    assert priorities == [1, 2, 3, 4, 5]


async def test_bulk_cancel_of_fifty_leaves_no_sandbox(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    await optio.client.post("/api/repos", json={"repoUrl": str(repo), "maxConcurrentTasks": 10})
    tasks = await asyncio.gather(
        *(create_task(optio.client, repo, f"echo {n}; sleep 60") for n in range(50))
    )
    ids = [t["id"] for t in tasks]
    await wait_for_states(optio.client, ids, "queued", "running")
    first = (await optio.client.post("/api/tasks/bulk/cancel-active")).json()
    assert first["cancelled"] == first["total"] == 50
    await wait_for_states(optio.client, ids, "cancelled")
    second = (await optio.client.post("/api/tasks/bulk/cancel-active")).json()
    assert second == {"cancelled": 0, "total": 0}
    from tests.workflows.test_lifecycle import _agent_alive

    def live_agents() -> list[Path]:
        return [run for run in optio.settings.runs_dir.iterdir() if _agent_alive(run)]

    # A cancelled task's agent is stopped as its run ends, which may follow the state.
    deadline = time.monotonic() + 30
    while live_agents() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not live_agents()


async def test_bulk_retry_failed_is_idempotent(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    tasks = []
    # The first runs fail while the gate is shut; the retried ones find it open and keep
    # running, so nothing fails again. (A sandboxed run sees no file of the test's.)
    gate = Gate()
    script = f"if {gate.probe()}; then sleep 60; else exit 1; fi"
    for _ in range(2):
        tasks.append(await create_task(optio.client, repo, script, maxRetries=0))
    for task in tasks:
        await wait_for_state(optio.client, task["id"], "failed")
    gate.open()
    try:
        first = (await optio.client.post("/api/tasks/bulk/retry-failed")).json()
        assert first == {"retried": 2, "total": 2}
        second = (await optio.client.post("/api/tasks/bulk/retry-failed")).json()
        assert second == {"retried": 0, "total": 0}
        for task in tasks:
            await wait_for_state(optio.client, task["id"], "running")
            count = (await triggers(optio.client, task["id"])).count(("queued", "user_retry"))
            assert count == 1
    finally:
        gate.close()


async def test_comments_are_the_authors(optio: Optio, make_repo: MakeRepo) -> None:
    task = await create_task(optio.client, make_repo(), "echo x > x")
    url = f"/api/tasks/{task['id']}/comments"
    created = await optio.client.post(url, json={"content": "Looks good"})
    assert created.status_code == 201
    comment = created.json()["comment"]
    assert (await optio.client.post(url, json={"content": ""})).status_code == 400
    edited = await optio.client.patch(f"{url}/{comment['id']}", json={"content": "LGTM"})
    assert edited.json()["comment"]["content"] == "LGTM"
    listed = (await optio.client.get(url)).json()["comments"]
    assert [c["content"] for c in listed] == ["LGTM"]
    assert (await optio.client.delete(f"{url}/{comment['id']}")).status_code == 204
    assert (await optio.client.get(url)).json()["comments"] == []


async def test_message_resumes_a_waiting_task(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo nothing")
    running = await optio.client.post(
        f"/api/tasks/{task['id']}/message", json={"content": "echo early > early"}
    )
    assert running.status_code in (202, 409)
    await wait_for_state(optio.client, task["id"], "needs_attention")
    sent = await optio.client.post(
        f"/api/tasks/{task['id']}/message", json={"content": "echo fixed > fixed"}
    )
    assert sent.status_code == 202, sent.text
    await wait_for_state(optio.client, task["id"], "pr_opened")
    messages = (await optio.client.get(f"/api/tasks/{task['id']}/messages")).json()["messages"]
    assert messages[-1]["content"] == "echo fixed > fixed" and messages[-1]["deliveredAt"]

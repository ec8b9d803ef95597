"""POST /api/tasks answers before the workflow start; the row makes sure it happens."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from core.names import task_workflow_id
from store.db import create_engine, session_factory
from store.models import Task
from store.types import utcnow
from tests.conftest import Optio
from tests.lifecycle_helpers import (
    commit_unstarted_task,
    create_task,
    task_starts,
    triggers,
    wait_for_state,
)

MakeRepo = Callable[..., Path]


async def test_a_lost_start_is_made_by_the_sweep(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    engine = create_engine(optio.settings.database_url_resolved)
    sessions = session_factory(engine)
    try:
        # As an API that stopped between committing the row and starting its workflow.
        task = await commit_unstarted_task(
            sessions, optio, repo, "echo ok > f", requested_at=utcnow() - timedelta(minutes=5)
        )
        young = await create_task(optio.client, repo, "echo young > g")
        starts = task_starts(optio, sessions)
        # Only what is older than the sweep's age is taken: the young task is the
        # business of the API that created it.
        assert await starts.sweep(older_than=60) == 1
        await wait_for_state(optio.client, task.id, "pr_opened")
        assert (await triggers(optio.client, task.id))[0] == ("queued", "task_submitted")
        async with sessions() as session:
            again = await session.get(Task, task.id)
            assert again is not None and again.start_requested_at is None
        # Each workflow's first transition takes its task off the sweep's list.
        await wait_for_state(optio.client, young["id"], "pr_opened")
        assert await starts.sweep(older_than=0) == 0
    finally:
        await engine.dispose()


async def test_two_api_processes_sweeping_one_lost_start_make_one_workflow(
    optio: Optio, make_repo: MakeRepo
) -> None:
    """Every API process sweeps (OPTIO_API_PROCESSES, or several `optio api`): two that
    find the same lost start at once start its workflow once."""
    repo = make_repo()
    engine = create_engine(optio.settings.database_url_resolved)
    sessions = session_factory(engine)
    try:
        task = await commit_unstarted_task(
            sessions, optio, repo, "echo ok > f", requested_at=utcnow() - timedelta(minutes=5)
        )
        one, other = task_starts(optio, sessions), task_starts(optio, sessions)
        # Each reports the start it made or found under the task's workflow id.
        assert await asyncio.gather(one.sweep(older_than=60), other.sweep(older_than=60)) == [
            1,
            1,
        ]
        await wait_for_state(optio.client, task.id, "pr_opened")
        found = await triggers(optio.client, task.id)
        assert found.count(("queued", "task_submitted")) == 1, found
        runs = [
            run
            async for run in optio.temporal.list_workflows(
                f"WorkflowId = '{task_workflow_id(task.id)}'"
            )
        ]
        assert len(runs) == 1
        # And once started, neither finds it again.
        assert await one.sweep(older_than=0) == 0 and await other.sweep(older_than=0) == 0
    finally:
        await engine.dispose()


async def test_a_cancel_is_not_overtaken_by_a_start_still_on_its_way(
    optio: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    engine = create_engine(optio.settings.database_url_resolved)
    try:
        # Committed by another API process whose start has not reached Temporal yet.
        task = await commit_unstarted_task(session_factory(engine), optio, repo, "sleep 30")
    finally:
        await engine.dispose()
    response = await optio.client.post(f"/api/tasks/{task.id}/cancel")
    assert response.status_code == 200, response.text
    await wait_for_state(optio.client, task.id, "cancelled")
    # The workflow was started (by the cancel's wait for it) and ends cancelled.
    handle = optio.temporal.get_workflow_handle(f"task-{task.id}")
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), 30)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED

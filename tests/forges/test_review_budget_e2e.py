"""A review run passing its repository's budget is stopped: the review fails with
`budget_exceeded`, posts no verdict, and is not retried (the budget signal reaches the
ReviewWorkflow, `review-<id>`, not the task workflow id a review never runs under)."""

from __future__ import annotations

import time

import pytest
from temporalio.worker import Replayer

from tests.conftest import Optio
from tests.forges.github_double import GitHubDouble
from tests.forges.test_github_e2e import MakeRepo, connect
from tests.lifecycle_helpers import create_task, triggers, wait_for_state
from tests.notify.test_budgets import OVERSPENDER
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("postgresql")


async def test_a_review_over_its_budget_is_stopped_and_fails(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo
) -> None:
    repo = github.add_repo("acme", "app", make_repo())
    # The coding run reports no cost; the review's script reports $0.05, then $0.20, then
    # would work on for a minute.
    url = await connect(optio, github, repo, reviewPromptTemplate=OVERSPENDER, maxCostUsd="0.10")
    task = await create_task(optio.client, url, "echo ok > f")
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=90)
    launched = await optio.client.post(f"/api/tasks/{task['id']}/review")
    assert launched.status_code == 201, launched.text
    review_id = launched.json()["reviewTaskId"]
    started = time.monotonic()
    done = await wait_for_state(optio.client, review_id, "completed", "failed", timeout=60)
    assert time.monotonic() - started < 40  # stopped, not waited out
    review = done["task"]
    assert review["state"] == "failed", await triggers(optio.client, review_id)
    assert review["errorMessage"] == "Budget exceeded: spent $0.20 of a $0.10 budget"
    assert review["costUsd"] == "0.20"
    assert (await triggers(optio.client, review_id))[-1] == ("failed", "budget_exceeded")
    assert repo.reviews.get(1, []) == []  # no verdict posted
    logs = (await optio.client.get(f"/api/tasks/{review_id}/logs")).json()["logs"]
    assert "never" not in [entry["content"] for entry in logs]
    # The stop (signal, cancel, stop_agent_run) replays deterministically.
    handle = optio.temporal.get_workflow_handle(f"review-{review_id}")
    await handle.result()
    history = await handle.fetch_history()
    await Replayer(workflows=WORKFLOWS, workflow_runner=WORKFLOW_RUNNER).replay_workflow(history)

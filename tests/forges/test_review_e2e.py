"""Review agents on GitHub (the REST double): launched by hand or by reviewTrigger, end to end.

The review agent is the `script` agent: the repo's review prompt template is its bash
script, which reads the context in .optio/task.md and writes its verdict to
.optio/review-draft.json. Optio posts that verdict as a real review, as the reviewer
account (GITHUB_REVIEW_TOKEN), and the PR watcher sees it like any person's review.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Optio
from tests.forges.git_http import refs
from tests.forges.github_double import GhRepo, GitHubDouble
from tests.forges.test_github_e2e import (
    FIX_ON_RESUME,
    MakeRepo,
    connect,
    main_file,
)
from tests.lifecycle_helpers import (
    Gate,
    create_task,
    triggers,
    wait_for_checks,
    wait_for_log_text,
    wait_for_state,
    wait_for_trigger,
)

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("postgresql")

REVIEWER_TOKEN = "reviewer-token"
REVIEWER = "optio-reviewer"

# Leaves a stray file behind too: a review run must neither commit nor push it.
VERDICT = """
cat .optio/task.md
echo scratch > reviewer-scratch.txt
cat > .optio/review-draft.json <<'JSON'
%s
JSON
"""
APPROVE = VERDICT % '{"verdict": "approve", "summary": "Looks good to me."}'
REQUEST_CHANGES = VERDICT % (
    '{"verdict": "request_changes", "summary": "The answer is wrong.",'
    ' "fileComments": [{"path": "answer", "line": 1, "body": "should be 42"}]}'
)


async def reviewer_account(optio: Optio, github: GitHubDouble) -> None:
    github.users[REVIEWER_TOKEN] = REVIEWER
    response = await optio.client.post(
        "/api/secrets", json={"name": "GITHUB_REVIEW_TOKEN", "value": REVIEWER_TOKEN}
    )
    assert response.status_code == 201, response.text


async def get_task(optio: Optio, task_id: str) -> dict[str, Any]:
    response = await optio.client.get(f"/api/tasks/{task_id}")
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()["task"]
    return task


async def reviews_of(optio: Optio, task_id: str) -> list[dict[str, Any]]:
    response = await optio.client.get(f"/api/tasks/{task_id}/subtasks")
    assert response.status_code == 200, response.text
    return [t for t in response.json()["subtasks"] if t["taskType"] == "review"]


async def wait_for_review_subtask(optio: Optio, task_id: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := await reviews_of(optio, task_id):
            return str(found[0]["id"])
        await asyncio.sleep(0.1)
    raise AssertionError("no review subtask was created")


def pushed_nothing(repo: GhRepo, review_id: str) -> bool:
    branches = refs(repo.path)
    return f"refs/heads/optio/task-{review_id}" not in branches and all(
        main_file_on(repo, ref, "reviewer-scratch.txt") is None for ref in branches
    )


def main_file_on(repo: GhRepo, ref: str, path: str) -> str | None:
    from tests.forges.git_http import git

    done = git(repo.path, "show", f"{ref}:{path}", check=False)
    return done.stdout if done.returncode == 0 else None


async def test_manual_review_blocks_the_parent_and_its_approval_lets_it_merge(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo, tmp_path: Path
) -> None:
    await reviewer_account(optio, github)
    gate = Gate()
    repo = github.add_repo("acme", "app", make_repo())
    repo.ci_command = "true"
    url = await connect(
        optio,
        github,
        repo,
        autoMerge=True,
        requireApproval=True,
        reviewPromptTemplate=gate.script(APPROVE),
    )
    task = await create_task(optio.client, url, "echo ok > f", title="Write f")
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=90)
    await wait_for_checks(optio.client, task["id"], "passing")
    assert repo.pulls[1].state == "open"  # passing CI alone does not merge: approval needed

    launched = await optio.client.post(f"/api/tasks/{task['id']}/review")
    assert launched.status_code == 201, launched.text
    review_id = launched.json()["reviewTaskId"]
    again = await optio.client.post(f"/api/tasks/{task['id']}/review")
    assert again.status_code == 200, again.text
    assert again.json() == {"reviewTaskId": review_id}  # the same review, not a second one
    review = await get_task(optio, review_id)
    assert review["taskType"] == "review" and review["blocksParent"] is True
    assert review["parentTaskId"] == task["id"] and review["title"] == "Review: Write f"
    await wait_for_state(optio.client, review_id, "running", timeout=60)
    assert len(await reviews_of(optio, task["id"])) == 1
    assert repo.pulls[1].state == "open" and not repo.reviews.get(1)

    gate.open()
    try:
        done = await wait_for_state(optio.client, review_id, "completed", "failed", timeout=60)
    finally:
        gate.close()
    assert done["task"]["state"] == "completed", await triggers(optio.client, review_id)
    assert (await triggers(optio.client, review_id))[-1] == ("completed", "review_posted")
    [posted] = repo.reviews[1]
    assert posted["state"] == "APPROVED" and posted["user"]["login"] == REVIEWER
    assert "Looks good to me." in posted["body"]

    await wait_for_state(optio.client, task["id"], "completed", timeout=60)
    assert (await triggers(optio.client, task["id"]))[-1] == ("completed", "auto_merged")
    assert repo.pulls[1].merged and main_file(repo, "f") == "ok\n"
    assert pushed_nothing(repo, review_id)
    # The context file: the task's prompt, the PR description and its diff.
    await wait_for_log_text(
        optio.client, review_id, "# Task: Write f", "echo ok > f", "## Diff", "+ok", "## Reviews"
    )
    # The rendered review template is the subtask's prompt once it ran.
    assert (await get_task(optio, review_id))["prompt"].startswith("until (exec 3<>/dev/tcp/")


async def test_requested_changes_resume_the_agent_with_the_inline_comments(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo
) -> None:
    await reviewer_account(optio, github)
    repo = github.add_repo("acme", "app", make_repo())
    repo.ci_command = "true"
    url = await connect(optio, github, repo, autoResume=True, reviewPromptTemplate=REQUEST_CHANGES)
    task = await create_task(optio.client, url, FIX_ON_RESUME)
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=90)
    launched = await optio.client.post(f"/api/tasks/{task['id']}/review")
    assert launched.status_code == 201, launched.text
    review_id = launched.json()["reviewTaskId"]

    await wait_for_trigger(optio.client, task["id"], ("queued", "auto_resume_review"), timeout=90)
    done = await wait_for_state(optio.client, review_id, "completed", "failed", timeout=60)
    assert done["task"]["state"] == "completed", await triggers(optio.client, review_id)
    [posted] = repo.reviews[1]
    assert posted["state"] == "CHANGES_REQUESTED" and posted["user"]["login"] == REVIEWER
    [comment] = repo.review_comments[1]
    assert (comment["path"], comment["line"], comment["body"]) == ("answer", 1, "should be 42")

    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=90)
    await wait_for_log_text(
        optio.client,
        task["id"],
        "A reviewer requested changes",
        "The answer is wrong.",
        "answer:1 - should be 42",
    )
    assert main_file_on(repo, f"optio/task-{task['id']}", "answer") == "42\n"
    assert pushed_nothing(repo, review_id)


async def test_review_trigger_on_pr_starts_a_review_automatically(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo
) -> None:
    await reviewer_account(optio, github)
    repo = github.add_repo("acme", "app", make_repo())
    repo.ci_command = "true"
    url = await connect(
        optio,
        github,
        repo,
        autoMerge=True,
        reviewEnabled=True,
        reviewTrigger="on_pr",
        reviewPromptTemplate=APPROVE,
    )
    task = await create_task(optio.client, url, "echo ok > f")
    review_id = await wait_for_review_subtask(optio, task["id"], timeout=90)
    await wait_for_state(optio.client, task["id"], "completed", timeout=90)
    review = await get_task(optio, review_id)
    assert review["state"] == "completed" and review["blocksParent"] is True
    assert (await triggers(optio.client, review_id))[-1] == ("completed", "review_posted")
    assert len(await reviews_of(optio, task["id"])) == 1
    [posted] = repo.reviews[1]
    assert posted["state"] == "APPROVED" and posted["user"]["login"] == REVIEWER
    assert (await triggers(optio.client, task["id"]))[-1] == ("completed", "auto_merged")
    assert pushed_nothing(repo, review_id)


async def test_without_a_reviewer_account_the_verdict_is_posted_as_a_comment(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo
) -> None:
    # GitHub refuses to let a PR's author (Optio's own token here) approve it.
    repo = github.add_repo("acme", "app", make_repo())
    url = await connect(optio, github, repo, reviewPromptTemplate=APPROVE)
    task = await create_task(optio.client, url, "echo ok > f")
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=90)
    launched = await optio.client.post(f"/api/tasks/{task['id']}/review")
    assert launched.status_code == 201, launched.text
    review_id = launched.json()["reviewTaskId"]
    done = await wait_for_state(optio.client, review_id, "completed", "failed", timeout=60)
    assert done["task"]["state"] == "completed", await triggers(optio.client, review_id)
    [posted] = repo.reviews[1]
    assert posted["state"] == "COMMENTED" and posted["user"]["login"] == "optio-bot"
    assert "Review verdict: approve" in posted["body"] and "Looks good to me." in posted["body"]


async def test_bad_requests_are_refused(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo
) -> None:
    missing = await optio.client.post("/api/tasks/no-such-task/review")
    assert missing.status_code == 404, missing.text
    repo = github.add_repo("acme", "app", make_repo())
    url = await connect(optio, github, repo)
    task = await create_task(optio.client, url, "exit 1")
    await wait_for_state(optio.client, task["id"], "failed", timeout=60)
    no_pr = await optio.client.post(f"/api/tasks/{task['id']}/review")
    assert no_pr.status_code == 409, no_pr.text
    assert await reviews_of(optio, task["id"]) == []
    anonymous = await optio.anon.post(f"/api/tasks/{task['id']}/review")
    assert anonymous.status_code == 401, anonymous.text

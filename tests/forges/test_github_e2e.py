"""Repo tasks on GitHub (the REST double): PR, CI, reviews, merge, webhooks, end to end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Optio
from tests.forges.conftest import ALICE_TOKEN, OPTIO_TOKEN
from tests.forges.git_http import commit_file
from tests.forges.github_double import GhRepo, GitHubDouble
from tests.lifecycle_helpers import (
    create_task,
    triggers,
    wait_for_checks,
    wait_for_log_text,
    wait_for_state,
    wait_for_trigger,
)

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("postgresql")

MakeRepo = Callable[..., Path]


async def connect(optio: Optio, github: GitHubDouble, repo: GhRepo, **settings: Any) -> str:
    url = github.clone_url(repo)
    body = {"repoUrl": url, "gitPlatform": "github", "forgeApiUrl": github.api_url, **settings}
    response = await optio.client.post("/api/repos", json=body)
    assert response.status_code == 201, response.text
    return url


def main_file(repo: GhRepo, path: str) -> str | None:
    from tests.forges.git_http import git

    done = git(repo.path, "show", f"main:{path}", check=False)
    return done.stdout if done.returncode == 0 else None


async def alice_review(github: GitHubDouble, repo: GhRepo, number: int, **body: Any) -> None:
    async with httpx.AsyncClient(base_url=github.api_url) as client:
        response = await client.post(
            f"/repos/{repo.full_name}/pulls/{number}/reviews",
            json=body,
            headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
        )
    assert response.status_code == 200, response.text


async def test_happy_path_to_auto_merge(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo
) -> None:
    repo = github.add_repo("acme", "app", make_repo())
    repo.ci_command = "test -f f"
    url = await connect(optio, github, repo, autoMerge=True)
    task = await create_task(optio.client, url, "echo ok > f\necho 'done: wrote f'")
    done = (await wait_for_state(optio.client, task["id"], "completed", timeout=90))["task"]
    assert done["prUrl"] == f"{github.base_url}/acme/app/pull/1"
    assert done["prNumber"] == 1 and done["prState"] == "merged"
    assert await triggers(optio.client, task["id"]) == [
        ("queued", "task_submitted"),
        ("provisioning", "worker_pickup"),
        ("running", "worktree_created"),
        ("pr_opened", "pr_detected"),
        ("completed", "auto_merged"),
    ]
    pr = repo.pulls[1]
    assert pr.merged and pr.head == f"optio/task-{task['id']}" and len(repo.pulls) == 1
    assert main_file(repo, "f") == "ok\n"
    assert github.merges == 1


async def test_private_repository_is_fetched_pushed_and_merged_with_its_credential(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo
) -> None:
    repo = github.add_repo("acme", "secret-app", make_repo(), private=True)
    url = github.clone_url(repo)
    # As on GitHub: nobody reads a private repository anonymously.
    from tests.forges.git_http import git

    # (in a thread: the double answers on this test's event loop)
    anonymous = await asyncio.to_thread(git, repo.path, "ls-remote", url, check=False)
    assert anonymous.returncode != 0

    url = await connect(optio, github, repo, autoMerge=True)
    task = await create_task(optio.client, url, "echo private > f\necho done")
    done = (await wait_for_state(optio.client, task["id"], "completed", timeout=90))["task"]
    assert done["prState"] == "merged"
    assert main_file(repo, "f") == "private\n"
    # The credential was used by the runner, outside the sandbox: the agent never saw it.
    logs = (await optio.client.get(f"/api/tasks/{task['id']}/logs")).json()["logs"]
    assert all(OPTIO_TOKEN not in entry["content"] for entry in logs)


# The script agent runs its prompt; Optio's own resume instructions reach it as a variable.
FIX_ON_RESUME = """
if [ -n "$OPTIO_RESUME_PROMPT" ]; then
  printf '%s\\n' "$OPTIO_RESUME_PROMPT"
  echo 42 > answer
else
  echo 41 > answer
fi
echo "done: answer is $(cat answer)"
"""


async def test_ci_failure_resumes_the_agent_with_the_failing_check_and_its_log(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo
) -> None:
    repo = github.add_repo("acme", "app", make_repo())
    repo.ci_command = 'echo "answer is $(cat answer)"; test "$(cat answer)" = 42'
    url = await connect(optio, github, repo, autoMerge=True, autoResume=True)
    task = await create_task(optio.client, url, FIX_ON_RESUME)
    done = (await wait_for_state(optio.client, task["id"], "completed", timeout=120))["task"]
    assert done["prNumber"] == 1 and len(repo.pulls) == 1
    assert main_file(repo, "answer") == "42\n"
    steps = await triggers(optio.client, task["id"])
    assert ("needs_attention", "ci_failing") in steps
    assert ("queued", "auto_resume_ci-fix") in steps
    assert steps[-1] == ("completed", "auto_merged")
    await wait_for_log_text(
        optio.client,
        task["id"],
        "CI checks are failing on your PR",
        "Failing check: test",
        "answer is 41",  # the log tail
        "##[error]Process completed with exit code 1.",
    )


async def test_changes_requested_resume_then_approval_merges(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo
) -> None:
    repo = github.add_repo("acme", "app", make_repo())
    repo.ci_command = "true"
    url = await connect(optio, github, repo, autoMerge=True, autoResume=True, requireApproval=True)
    task = await create_task(optio.client, url, FIX_ON_RESUME)
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=90)
    await wait_for_checks(optio.client, task["id"], "passing")
    assert repo.pulls[1].state == "open"  # passing CI alone does not merge: approval needed
    await alice_review(
        github,
        repo,
        1,
        event="REQUEST_CHANGES",
        body="The answer is wrong.",
        comments=[{"path": "answer", "line": 1, "body": "should be 42"}],
    )
    await wait_for_trigger(optio.client, task["id"], ("queued", "auto_resume_review"))
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=60)
    await wait_for_checks(optio.client, task["id"], "passing")
    assert repo.pulls[1].state == "open"  # alice's requested changes still stand
    await alice_review(github, repo, 1, event="APPROVE", body="")
    await wait_for_state(optio.client, task["id"], "completed", timeout=60)
    steps = await triggers(optio.client, task["id"])
    assert steps.count(("queued", "auto_resume_review")) == 1  # once per review, not per poll
    assert steps[-1] == ("completed", "auto_merged")
    assert main_file(repo, "answer") == "42\n"
    await wait_for_log_text(
        optio.client,
        task["id"],
        "A reviewer requested changes",
        "The answer is wrong.",
        "answer:1 - should be 42",
    )


async def test_pr_closed_by_a_person_fails_the_task(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo
) -> None:
    repo = github.add_repo("acme", "app", make_repo())
    url = await connect(optio, github, repo)
    task = await create_task(optio.client, url, "echo change > f")
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=90)
    async with httpx.AsyncClient(base_url=github.api_url) as client:
        closed = await client.patch(
            f"/repos/{repo.full_name}/pulls/1",
            json={"state": "closed"},
            headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
        )
    assert closed.status_code == 200
    failed = (await wait_for_state(optio.client, task["id"], "failed", timeout=30))["task"]
    assert failed["prState"] == "closed"
    assert (await triggers(optio.client, task["id"]))[-1] == ("failed", "pr_closed")


async def test_the_auto_resume_cap_hands_over_to_a_person(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo
) -> None:
    repo = github.add_repo("acme", "app", make_repo())
    repo.ci_command = "false"
    url = await connect(optio, github, repo, autoMerge=True, autoResume=True, maxAutoResumes=1)
    task = await create_task(optio.client, url, "echo $RANDOM$RANDOM > f")
    await wait_for_trigger(optio.client, task["id"], ("queued", "auto_resume_ci-fix"))
    await wait_for_state(optio.client, task["id"], "needs_attention", timeout=90)
    await asyncio.sleep(0.5)
    task_now = (await optio.client.get(f"/api/tasks/{task['id']}")).json()["task"]
    steps = await triggers(optio.client, task["id"])
    if task_now["state"] != "needs_attention" or steps[-1][0] != "needs_attention":
        await wait_for_state(optio.client, task["id"], "needs_attention", timeout=60)
        steps = await triggers(optio.client, task["id"])
    assert steps.count(("queued", "auto_resume_ci-fix")) == 1
    assert steps[-1] == ("needs_attention", "ci_failing")
    events = (await optio.client.get(f"/api/tasks/{task['id']}/events")).json()["events"]
    assert "cap of 1 automatic resumes" in (events[-1]["message"] or "")


async def test_conflicts_resume_the_agent_to_rebase(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = github.add_repo("acme", "app", make_repo(files={"f": "base\n"}))
    # CI holds until a person has pushed to main, whatever the machine's speed.
    gate = tmp_path / "ci-gate"
    repo.ci_command = f"while [ ! -e {gate} ]; do sleep 0.1; done"
    url = await connect(optio, github, repo, autoMerge=True, autoResume=True)
    script = """
if [ -n "$OPTIO_RESUME_PROMPT" ]; then
  printf '%s\\n' "$OPTIO_RESUME_PROMPT" | head -1
  git -c user.name=a -c user.email=a@b rebase -X theirs main >/dev/null
else
  echo agent > f
fi
"""
    task = await create_task(optio.client, url, script)
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=90)
    commit_file(repo.path, branch="main", path="f", content="person\n", message="person")
    gate.touch()
    await wait_for_trigger(optio.client, task["id"], ("queued", "auto_resume_conflicts"))
    done = await wait_for_state(optio.client, task["id"], "completed", timeout=90)
    assert done["task"]["prNumber"] == 1 and len(repo.pulls) == 1
    assert ("needs_attention", "merge_conflicts") in await triggers(optio.client, task["id"])
    assert main_file(repo, "f") == "agent\n"
    await wait_for_log_text(optio.client, task["id"], "merge conflicts")


async def test_webhooks_make_the_reaction_immediate(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo
) -> None:
    optio.settings.pr_watch_interval_ms = 120_000  # polling alone would take minutes
    github.webhook_url = f"http://127.0.0.1:{optio.settings.api_port}/api/webhooks/github"
    repo = github.add_repo("acme", "app", make_repo())
    repo.ci_command = "sleep 1"
    url = await connect(optio, github, repo, autoMerge=True)
    task = await create_task(optio.client, url, "echo ok > f")
    await wait_for_state(optio.client, task["id"], "completed", timeout=45)
    assert (await triggers(optio.client, task["id"]))[-1] == ("completed", "auto_merged")
    assert any(event == "check_run" for event, _ in github.deliveries)


async def test_a_forged_webhook_is_refused_and_changes_nothing(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo
) -> None:
    repo = github.add_repo("acme", "app", make_repo())
    await connect(optio, github, repo)
    body = {"action": "closed", "number": 1, "pull_request": {"number": 1, "merged": True}}
    raw, headers = github.signed(
        "pull_request", {**body, "repository": {"full_name": "acme/app"}}, secret="wrong"
    )
    refused = await optio.anon.post("/api/webhooks/github", content=raw, headers=headers)
    assert refused.status_code == 401
    raw, headers = github.signed("pull_request", {**body, "repository": {"full_name": "acme/app"}})
    accepted = await optio.anon.post("/api/webhooks/github", content=raw, headers=headers)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["accepted"] is True
    replay = await optio.anon.post("/api/webhooks/github", content=raw, headers=headers)
    assert replay.status_code == 202 and replay.json() == {"accepted": False, "duplicate": True}

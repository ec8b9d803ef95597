"""Repo tasks on GitLab (the REST v4 double): MR, pipelines, reviews, merge, webhooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Optio, free_port
from tests.forges.conftest import ALICE_TOKEN, HOOK_SECRET, OPTIO_TOKEN, serve
from tests.forges.git_http import git
from tests.forges.gitlab_double import GitLabDouble, Project
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


@pytest.fixture
async def gitlab(tmp_path: Path) -> AsyncIterator[GitLabDouble]:
    double = GitLabDouble(
        tmp_path / "gitlab", users={OPTIO_TOKEN: "optio-bot", ALICE_TOKEN: "alice"}
    )
    port = free_port()
    double.base_url = f"http://127.0.0.1:{port}"
    double.events.secret = HOOK_SECRET
    server, task = await serve(double.app, port)
    yield double
    server.should_exit = True
    await task


async def connect(optio: Optio, gitlab: GitLabDouble, project: Project, **settings: Any) -> str:
    url = gitlab.clone_url(project)
    body = {"repoUrl": url, "gitPlatform": "gitlab", "forgeApiUrl": gitlab.api_url, **settings}
    response = await optio.client.post("/api/repos", json=body)
    assert response.status_code == 201, response.text
    return url


async def as_alice(gitlab: GitLabDouble, method: str, path: str, **body: Any) -> httpx.Response:
    """What a person does in GitLab's UI, through the API with their own token."""
    async with httpx.AsyncClient(base_url=f"{gitlab.api_url}/projects/acme%2Fapp") as client:
        response = await client.request(
            method, path, json=body or None, headers={"PRIVATE-TOKEN": ALICE_TOKEN}
        )
    assert response.is_success, response.text
    return response


def main_file(project: Project, path: str) -> str | None:
    done = git(project.path, "show", f"main:{path}", check=False)
    return done.stdout if done.returncode == 0 else None


async def test_happy_path_to_auto_merge(
    optio: Optio, gitlab: GitLabDouble, make_repo: MakeRepo
) -> None:
    project = gitlab.add_project("acme", "app", make_repo())
    project.ci_command = "test -f f"
    url = await connect(optio, gitlab, project, autoMerge=True)
    task = await create_task(optio.client, url, "echo ok > f\necho 'done: wrote f'")
    done = (await wait_for_state(optio.client, task["id"], "completed", timeout=90))["task"]
    assert done["prUrl"] == f"{gitlab.base_url}/acme/app/-/merge_requests/1"
    assert done["prNumber"] == 1 and done["prState"] == "merged"
    assert await triggers(optio.client, task["id"]) == [
        ("queued", "task_submitted"),
        ("provisioning", "worker_pickup"),
        ("running", "worktree_created"),
        ("pr_opened", "pr_detected"),
        ("completed", "auto_merged"),
    ]
    mr = project.mrs[1]
    assert mr.state == "merged" and mr.source == f"optio/task-{task['id']}"
    assert len(project.mrs) == 1 and gitlab.merges == 1
    assert project.pipelines[-1]["status"] == "success"
    assert main_file(project, "f") == "ok\n"


async def test_pipeline_failure_resumes_the_agent_with_the_failing_job_and_its_trace(
    optio: Optio, gitlab: GitLabDouble, make_repo: MakeRepo
) -> None:
    project = gitlab.add_project("acme", "app", make_repo())
    project.ci_command = 'echo "answer is $(cat answer)"; test "$(cat answer)" = 42'
    url = await connect(optio, gitlab, project, autoMerge=True, autoResume=True)
    task = await create_task(optio.client, url, FIX_ON_RESUME)
    done = (await wait_for_state(optio.client, task["id"], "completed", timeout=120))["task"]
    assert done["prNumber"] == 1 and len(project.mrs) == 1
    assert [p["status"] for p in project.pipelines] == ["failed", "success"]
    assert main_file(project, "answer") == "42\n"
    steps = await triggers(optio.client, task["id"])
    assert ("needs_attention", "ci_failing") in steps
    assert ("queued", "auto_resume_ci-fix") in steps
    assert steps[-1] == ("completed", "auto_merged")
    await wait_for_log_text(
        optio.client,
        task["id"],
        "CI checks are failing on your PR",
        "Failing check: test",
        "answer is 41",  # the job trace's tail
        "ERROR: Job failed: exit code 1",
    )


async def test_changes_requested_resume_then_approval_merges(
    optio: Optio, gitlab: GitLabDouble, make_repo: MakeRepo
) -> None:
    project = gitlab.add_project("acme", "app", make_repo())
    project.ci_command = "true"
    url = await connect(
        optio, gitlab, project, autoMerge=True, autoResume=True, requireApproval=True
    )
    task = await create_task(optio.client, url, FIX_ON_RESUME)
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=90)
    await wait_for_checks(optio.client, task["id"], "passing")
    assert project.mrs[1].state == "opened"  # a passing pipeline alone does not merge
    # Alice is asked for a review, comments on a line and submits "Request changes".
    await as_alice(gitlab, "PUT", "/merge_requests/1", reviewer_ids=[gitlab.user_ids["alice"]])
    mr = (await as_alice(gitlab, "GET", "/merge_requests/1")).json()
    position = {
        "position_type": "text",
        **mr["diff_refs"],
        "old_path": "answer",
        "new_path": "answer",
        "new_line": 1,
    }
    await as_alice(
        gitlab, "POST", "/merge_requests/1/draft_notes", note="should be 42", position=position
    )
    await as_alice(
        gitlab,
        "POST",
        "/merge_requests/1/draft_notes/bulk_publish",
        note="The answer is wrong.",
        reviewer_state="requested_changes",
    )
    await wait_for_trigger(optio.client, task["id"], ("queued", "auto_resume_review"))
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=60)
    await wait_for_checks(optio.client, task["id"], "passing")
    await asyncio.sleep(1)  # a few polls: alice's requested changes still stand
    assert project.mrs[1].state == "opened"
    assert project.mrs[1].reviewers == {"alice": "requested_changes"}
    await as_alice(gitlab, "POST", "/merge_requests/1/approve")
    await wait_for_state(optio.client, task["id"], "completed", timeout=60)
    steps = await triggers(optio.client, task["id"])
    assert steps.count(("queued", "auto_resume_review")) == 1  # once per review, not per poll
    assert steps[-1] == ("completed", "auto_merged")
    assert main_file(project, "answer") == "42\n"
    await wait_for_log_text(
        optio.client,
        task["id"],
        "A reviewer requested changes",
        "The answer is wrong.",
        "answer:1 - should be 42",
    )


async def test_mr_closed_by_a_person_fails_the_task(
    optio: Optio, gitlab: GitLabDouble, make_repo: MakeRepo
) -> None:
    project = gitlab.add_project("acme", "app", make_repo())
    url = await connect(optio, gitlab, project)
    task = await create_task(optio.client, url, "echo change > f")
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=90)
    await as_alice(gitlab, "PUT", "/merge_requests/1", state_event="close")
    failed = (await wait_for_state(optio.client, task["id"], "failed", timeout=30))["task"]
    assert failed["prState"] == "closed" and project.mrs[1].state == "closed"
    assert (await triggers(optio.client, task["id"]))[-1] == ("failed", "pr_closed")


async def test_webhooks_make_the_reaction_immediate(
    optio: Optio, gitlab: GitLabDouble, make_repo: MakeRepo, tmp_path: Path
) -> None:
    optio.settings.pr_watch_interval_ms = 120_000  # polling alone would take minutes
    gitlab.events.webhook_url = f"http://127.0.0.1:{optio.settings.api_port}/api/webhooks/gitlab"
    project = gitlab.add_project("acme", "app", make_repo())
    # The pipeline finishes only once the MR is watched, so only its webhook can tell.
    gate = tmp_path / "ci-gate"
    project.ci_command = f"while [ ! -e {gate} ]; do sleep 0.1; done"
    url = await connect(optio, gitlab, project, autoMerge=True)
    task = await create_task(optio.client, url, "echo ok > f")
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=90)
    await wait_for_checks(optio.client, task["id"], "pending")
    gate.touch()
    await wait_for_state(optio.client, task["id"], "completed", timeout=30)
    assert (await triggers(optio.client, task["id"]))[-1] == ("completed", "auto_merged")
    pipelines = [d for d in gitlab.events.deliveries if d.event == "Pipeline Hook"]
    assert pipelines and all(d.status == 202 for d in pipelines)


def pipeline_hook(gitlab: GitLabDouble, project: Project) -> dict[str, Any]:
    return {
        "object_kind": "pipeline",
        "object_attributes": {"id": 1, "ref": "optio/task-x", "status": "success"},
        "merge_request": {"iid": 1},
        "project": gitlab.events.project_json(project),
    }


async def test_a_webhook_with_a_wrong_token_is_refused_and_changes_nothing(
    optio: Optio, gitlab: GitLabDouble, make_repo: MakeRepo
) -> None:
    project = gitlab.add_project("acme", "app", make_repo())
    await connect(optio, gitlab, project)
    body = pipeline_hook(gitlab, project)
    headers = gitlab.events.headers("Pipeline Hook")
    wrong = {**headers, "X-Gitlab-Token": "wrong"}
    refused = await optio.anon.post("/api/webhooks/gitlab", json=body, headers=wrong)
    assert refused.status_code == 401
    unsigned = {k: v for k, v in headers.items() if k != "X-Gitlab-Token"}
    missing = await optio.anon.post("/api/webhooks/gitlab", json=body, headers=unsigned)
    assert missing.status_code == 401
    # The same delivery with the right token is new: the refused ones left no trace.
    accepted = await optio.anon.post("/api/webhooks/gitlab", json=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["accepted"] is True
    replay = await optio.anon.post("/api/webhooks/gitlab", json=body, headers=headers)
    assert replay.status_code == 202 and replay.json() == {"accepted": False, "duplicate": True}


async def test_a_merge_request_hook_is_matched_to_its_repository(
    optio: Optio, gitlab: GitLabDouble, make_repo: MakeRepo
) -> None:
    project = gitlab.add_project("acme", "app", make_repo())
    await connect(optio, gitlab, project)
    body = {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "project": gitlab.events.project_json(project),
        "repository": gitlab.events.repository_json(project),
        "object_attributes": {"iid": 1, "source_branch": "optio/task-x", "action": "update"},
    }
    headers = gitlab.events.headers("Merge Request Hook")
    accepted = await optio.anon.post("/api/webhooks/gitlab", json=body, headers=headers)
    assert accepted.status_code == 202, accepted.text

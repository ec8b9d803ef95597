"""A local repository belongs to one workspace and never lies inside the data dir.

The attack of issue 13: a second workspace connected the first one's local repository
path, read it and auto-merged into its `main`; tasks were accepted on Optio's own
mirror cache. Each test performs the attack through the API and expects the refusal.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from schemas.blueprint_runs import BlueprintRunInput
from store.blueprints import TaskConfig
from store.db import create_engine, session_factory, transaction
from store.models import Task
from tests.conftest import Optio, cancel_open_workflows, git
from tests.identity.conftest import Person

MakeRepo = Callable[..., Path]


@pytest.fixture
async def clean_api(api_only: Optio) -> AsyncIterator[Optio]:
    """The API alone; any workflow a hole let start is ended after the test."""
    yield api_only
    await cancel_open_workflows(api_only)


def blueprint(repo_url: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "repo-blueprint",
        "name": fields.pop("name", "bp"),
        "prompt": "echo hi > f",
        "repoUrl": repo_url,
        "agentType": "script",
        **fields,
    }


def task(repo_url: str) -> dict[str, Any]:
    return {"title": "t", "prompt": "echo hi > f", "repoUrl": repo_url, "agentType": "script"}


async def test_another_workspace_cannot_connect_or_use_a_connected_local_repo(
    api_only: Optio, people: Callable[..., Any], make_repo: MakeRepo, tmp_path: Path
) -> None:
    victim = api_only.client
    repo = make_repo()
    connected = await victim.post("/api/repos", json={"repoUrl": str(repo), "autoMerge": True})
    assert connected.status_code == 201, connected.text
    mallory: Person = await people("Mallory")

    # The same path spelled every way: plain, file://, through `..` and a symlink.
    link = tmp_path / "innocent-looking"
    link.symlink_to(repo)
    spellings = [
        str(repo),
        f"file://{repo}",
        f"{repo.parent}/../{repo.parent.name}/{repo.name}",
        str(link),
    ]
    for spelling in spellings:
        again = await mallory.client.post("/api/repos", json={"repoUrl": spelling})
        assert again.status_code == 403, (spelling, again.text)
        assert "another workspace" in again.json()["error"]
        for path, body in (
            ("/api/tasks", task(spelling)),
            ("/api/tasks", blueprint(spelling)),
            ("/api/task-configs", blueprint(spelling)),
        ):
            refused = await mallory.client.post(path, json=body)
            assert refused.status_code == 403, (path, spelling, refused.text)
    assert (await mallory.client.get("/api/repos")).json()["repos"] == []
    assert (await mallory.client.get("/api/tasks?type=all")).json()["tasks"] == []

    # A blueprint of her own cannot be pointed at it afterwards either.
    own = make_repo()
    mine = await mallory.client.post("/api/tasks", json=blueprint(str(own)))
    assert mine.status_code == 201, mine.text
    moved = await mallory.client.patch(
        f"/api/tasks/{mine.json()['task']['id']}", json={"repoUrl": str(repo)}
    )
    assert moved.status_code == 403, moved.text

    # The victim's own workspace keeps working on it.
    ok = await victim.post("/api/tasks", json=blueprint(str(repo), name="nightly"))
    assert ok.status_code == 201, ok.text


async def test_a_local_repo_used_but_not_connected_is_held_by_its_first_workspace(
    api_only: Optio, people: Callable[..., Any], make_repo: MakeRepo
) -> None:
    repo = make_repo()
    used = await api_only.client.post("/api/tasks", json=blueprint(str(repo)))
    assert used.status_code == 201, used.text
    mallory: Person = await people("Mallory")
    connect = await mallory.client.post("/api/repos", json={"repoUrl": str(repo)})
    assert connect.status_code == 403, connect.text
    refused = await mallory.client.post("/api/tasks", json=blueprint(str(repo)))
    assert refused.status_code == 403, refused.text

    # And the other way round: hers first, then the admin's workspace is refused.
    theirs = make_repo()
    claimed = await mallory.client.post("/api/tasks", json=blueprint(str(theirs)))
    assert claimed.status_code == 201, claimed.text
    late = await api_only.client.post("/api/repos", json={"repoUrl": str(theirs)})
    assert late.status_code == 403, late.text


async def test_nothing_inside_the_data_dir_can_be_a_repository(
    api_only: Optio, make_repo: MakeRepo, tmp_path: Path
) -> None:
    data = api_only.settings.data_dir
    # A mirror and a task worktree, as Optio keeps them.
    mirror = data / "mirrors" / "cache.git"
    mirror.parent.mkdir(parents=True)
    git("clone", "-q", "--bare", str(make_repo()), str(mirror), cwd=tmp_path)
    worktree = data / "worktrees" / "task-x"
    git("worktree", "add", "-q", "-b", "optio/task-x", str(worktree), "main", cwd=mirror)
    # Outside the data dir, but reading its objects from there.
    linked = tmp_path / "linked-worktree"
    git("worktree", "add", "-q", "-b", "side", str(linked), "main", cwd=mirror)
    borrowed = tmp_path / "borrowed.git"
    git("clone", "-q", "--bare", "--shared", str(mirror), str(borrowed), cwd=tmp_path)
    link = tmp_path / "data-link"
    link.symlink_to(mirror)

    for target in [mirror, worktree, linked, borrowed, link, f"file://{mirror}"]:
        for path, body in (
            ("/api/repos", {"repoUrl": str(target)}),
            ("/api/tasks", task(str(target))),
            ("/api/tasks", blueprint(str(target))),
        ):
            refused = await api_only.client.post(path, json=body)
            assert refused.status_code == 400, (path, target, refused.text)
            assert "data directory" in refused.json()["details"][0]["message"]


async def test_local_repos_only_under_the_allowed_roots(
    api_only: Optio, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    inside = allowed / "inside.git"
    git("clone", "-q", "--bare", str(make_repo()), str(inside), cwd=tmp_path)
    # The app shares this settings object: the operator narrowed the roots.
    api_only.settings.local_repo_roots = [allowed]
    outside = await api_only.client.post("/api/repos", json={"repoUrl": str(repo)})
    assert outside.status_code == 400, outside.text
    assert "OPTIO_LOCAL_REPO_ROOTS" in outside.json()["details"][0]["message"]
    escape = await api_only.client.post("/api/tasks", json=task(f"{allowed}/../{repo.name}"))
    assert escape.status_code == 400, escape.text
    assert (
        await api_only.client.post("/api/repos", json={"repoUrl": str(inside)})
    ).status_code == 201

    api_only.settings.local_repo_roots = []  # a shared server: no local repositories at all
    none = await api_only.client.post("/api/tasks", json=blueprint(str(inside), name="x"))
    assert none.status_code == 400, none.text
    # Remote repositories are the forge's business and stay allowed.
    remote = await api_only.client.post(
        "/api/tasks", json=blueprint("https://github.com/acme/app", name="remote")
    )
    assert remote.status_code == 201, remote.text


async def test_a_task_saved_before_repos_had_owners_cannot_act_on_the_owners_repo(
    clean_api: Optio, people: Callable[..., Any], make_repo: MakeRepo
) -> None:
    api_only = clean_api
    repo = make_repo()
    connected = await api_only.client.post("/api/repos", json={"repoUrl": str(repo)})
    assert connected.status_code == 201, connected.text
    repo_url = connected.json()["repo"]["repoUrl"]
    mallory: Person = await people("Mallory")
    # Her task on the victim's repository, with a local PR, as an older version let her.
    pr_url = f"{repo_url}/pull/1"
    engine = create_engine(api_only.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        task = Task(
            workspace_id=mallory.workspace_id,
            title="old",
            prompt="p",
            repo_url=repo_url,
            agent_type="script",
            state="pr_opened",
            pr_url=pr_url,
            pr_number=1,
            pr_state="open",
        )
        session.add(task)
        await session.flush()
        task_id = task.id
    await engine.dispose()

    sub = await mallory.client.post(
        f"/api/tasks/{task_id}/subtasks", json={"title": "s", "prompt": "p", "autoQueue": False}
    )
    assert sub.status_code == 403, sub.text
    review = await mallory.client.post(f"/api/tasks/{task_id}/review")
    assert review.status_code == 403, review.text
    merge = await mallory.client.post("/api/pull-requests/merge", json={"prUrl": pr_url})
    assert merge.status_code == 403, merge.text
    assert git("rev-list", "--count", "main", cwd=repo) == "1"  # the victim's main untouched


async def test_a_scheduled_blueprint_run_on_another_workspaces_repo_creates_nothing(
    optio: Optio, people: Callable[..., Any], make_repo: MakeRepo
) -> None:
    """A schedule fires without the API: the worker checks the repository's owner too."""
    repo = make_repo()
    connected = await optio.client.post("/api/repos", json={"repoUrl": str(repo)})
    assert connected.status_code == 201, connected.text
    mallory: Person = await people("Mallory")
    engine = create_engine(optio.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        blueprint = TaskConfig(
            workspace_id=mallory.workspace_id,
            name="old",
            title="old",
            prompt="echo pwned > f",
            repo_url=connected.json()["repo"]["repoUrl"],
            agent_type="script",
        )
        session.add(blueprint)
        await session.flush()
        config_id = blueprint.id
    await engine.dispose()

    with pytest.raises(WorkflowFailureError) as failed:
        # Bounded: where the hole is open the run creates the task and waits on it.
        await asyncio.wait_for(
            optio.temporal.execute_workflow(
                "BlueprintRunWorkflow",
                BlueprintRunInput(config_id=config_id),
                id=f"blueprint-{config_id}-schedule-test",
                task_queue=optio.settings.task_queue,
            ),
            timeout=60,
        )
    cause = failed.value.cause
    while not isinstance(cause, ApplicationError) and cause is not None:
        cause = cause.cause
    assert isinstance(cause, ApplicationError) and cause.type == "RepoNotAllowed"
    assert "another workspace" in cause.message
    assert (await mallory.client.get("/api/tasks")).json()["tasks"] == []

"""Branch names are data: one that reads like a git option never reaches git as one.

The API refuses names `git check-ref-format --branch` would refuse (400 naming the
field), and the git layer puts `--end-of-options` / `--` before every revision and path
that comes from data, so a name stored before the check (or given by a forge) is still
only a name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from integrations.forges.local import diff_stats, is_merged
from integrations.git import GitError, ensure_mirror, prepare_worktree
from schemas.refs import branch_name_problem, is_plain_word
from tests.blueprints.conftest import create_blueprint
from tests.conftest import Optio, git

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("postgresql")

MakeRepo = Callable[..., Path]

OPTION_LIKE = ["--orphan", "-b", "--output/x", "main..evil", "a/.hidden", "x.lock", "a//b"]


@pytest.mark.parametrize("branch", OPTION_LIKE)
async def test_the_api_refuses_a_branch_git_would_not_accept(
    api_only: Optio, make_repo: MakeRepo, branch: str
) -> None:
    repo = make_repo()
    client = api_only.client
    task = await client.post(
        "/api/tasks",
        json={"title": "t", "prompt": "true", "repoUrl": str(repo), "repoBranch": branch},
    )
    assert task.status_code == 400, task.text
    assert task.json()["details"][0]["field"] == "repoBranch"
    assert "branch name" in task.json()["details"][0]["message"]

    created = await client.post("/api/repos", json={"repoUrl": str(repo), "defaultBranch": branch})
    assert created.status_code == 400, created.text
    good = await client.post("/api/repos", json={"repoUrl": str(repo)})
    assert good.status_code == 201, good.text
    patched = await client.patch(
        f"/api/repos/{good.json()['repo']['id']}", json={"defaultBranch": branch}
    )
    assert patched.status_code == 400, patched.text
    assert (await client.get("/api/tasks")).json()["tasks"] == []  # nothing half-written


async def test_a_blueprint_refuses_an_option_like_branch(optio: Optio, make_repo: MakeRepo) -> None:
    with pytest.raises(AssertionError, match="400"):
        await create_blueprint(optio.client, make_repo(), repoBranch="--orphan")


def test_a_base_branch_named_like_an_option_writes_no_file(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    """`git diff --numstat <base>...<head>` with base `--output=<file>` would write it."""
    repo = make_repo()
    target = tmp_path / "written-by-git"
    base = f"--output={target}"
    with pytest.raises(GitError):
        diff_stats(repo=repo, base=base, head="main")
    with pytest.raises(GitError):
        is_merged(repo=repo, base="main", head=f"--output={target}")
    assert not list(tmp_path.glob("written-by-git*"))


def test_the_runner_refuses_option_like_branches_before_git_sees_them(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    mirror = ensure_mirror(repo_url=f"file://{repo}", cache_dir=tmp_path / "mirrors")
    for base in ("--detach", "--orphan=x", "main..HEAD"):
        with pytest.raises(GitError, match="Refusing the branch name"):
            prepare_worktree(
                mirror=mirror,
                worktree_path=tmp_path / "wt",
                branch="optio/task-1",
                base_branch=base,
                from_existing_branch=False,
            )
        with pytest.raises(GitError, match="Refusing the branch name"):
            ensure_mirror(
                repo_url=f"file://{repo}", cache_dir=tmp_path / "mirrors", branches=[base]
            )
    assert not (tmp_path / "wt").exists()
    assert git("for-each-ref", "--format=%(refname)", cwd=mirror).split() == ["refs/heads/main"]


@pytest.mark.parametrize(
    "name",
    [
        "main",
        "feature/x",
        "release-1.2",
        "a",
        "-x",
        "--upload-pack=x",
        "a..b",
        "a/.b",
        "a.lock",
        "a//b",
        "a b",
        "HEAD",
        "a.",
        "x@{y}",
        ".x",
        "a/b.lock/c",
        "a/",
        "/a",
        "a~1",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[",
        "a\\b",
        "tab\tx",
        "é",
    ],
)
def test_the_pure_check_agrees_with_git(name: str, tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True)
    assert (branch_name_problem(name) is None) == (done.returncode == 0)


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ("3f2b9c1e-7a41-4c5e-9d0f-2b8a6c4e1f00", True),  # Claude, Codex, Gemini, Copilot
        ("ses_5d1e2f3a4b", True),  # OpenCode
        ("--dangerously-skip-permissions", False),
        ("-c", False),
        ("id --yolo", False),
        ("id\n--yolo", False),
        ("", False),
    ],
)
def test_an_agent_reported_session_id_is_never_an_option(value: str, plain: bool) -> None:
    """The session id an agent prints goes on its next command line (`--resume <id>`)."""
    assert is_plain_word(value) is plain

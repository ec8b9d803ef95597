"""The local forge: diff stats, mergeability, the three merge methods and checks."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from integrations.forges.local import (
    CHECKS_NICENESS,
    DiffStats,
    check_mergeable,
    diff_stats,
    is_merged,
    merge,
    run_checks,
)
from integrations.git import GitError, head_sha

AUTHOR = {"author_name": "Merger", "author_email": "merger@example.com"}


@pytest.fixture(autouse=True)
def _isolated_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip()


def commit_file(repo: Path, name: str, content: str, message: str = "change") -> str:
    (repo / name).write_text(content)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_pr_repo(tmp_path: Path, *, conflict: bool = False) -> Path:
    """Non-bare repo on main: `feature` has two commits; main moved on independently."""
    repo = tmp_path / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    commit_file(repo, "shared.txt", "one\ntwo\nthree\n", "initial")
    git(repo, "checkout", "-q", "-b", "feature")
    commit_file(repo, "shared.txt", "one\nTWO\nthree\n", "edit shared")
    commit_file(repo, "feature.txt", "a\nb\nc\n", "add feature")
    git(repo, "checkout", "-q", "main")
    if conflict:
        commit_file(repo, "shared.txt", "one\n2\nthree\n", "conflicting edit")
    else:
        commit_file(repo, "main.txt", "main\n", "unrelated main work")
    return repo


def as_bare(repo: Path) -> Path:
    bare = repo.with_name("forge.git")
    git(repo.parent, "clone", "-q", "--bare", str(repo), str(bare))
    return bare


def parents(repo: Path, ref: str) -> list[str]:
    return git(repo, "rev-list", "--parents", "-n", "1", ref).split()[1:]


def show(repo: Path, ref: str, path: str) -> str:
    return git(repo, "show", f"{ref}:{path}")


# --- inspection --------------------------------------------------------------------------


def test_diff_stats_uses_merge_base(tmp_path: Path) -> None:
    repo = make_pr_repo(tmp_path)
    # main.txt (only on main) must not count: three-dot diff against the merge base.
    assert diff_stats(repo=repo, base="main", head="feature") == DiffStats(
        additions=4, deletions=1, changed_files=2
    )
    assert diff_stats(repo=repo, base="main", head="main") == DiffStats(0, 0, 0)


def test_is_merged(tmp_path: Path) -> None:
    repo = make_pr_repo(tmp_path)
    assert not is_merged(repo=repo, base="main", head="feature")
    assert is_merged(repo=repo, base="main", head="main~1")


def test_check_mergeable(tmp_path: Path) -> None:
    clean = make_pr_repo(tmp_path / "clean")
    check = check_mergeable(repo=clean, base="main", head="feature")
    assert check.mergeable and check.conflict_files == []

    conflicting = make_pr_repo(tmp_path / "conflict", conflict=True)
    check = check_mergeable(repo=conflicting, base="main", head="feature")
    assert not check.mergeable and check.conflict_files == ["shared.txt"]


# --- merging in a bare repository ---------------------------------------------------------


def test_merge_commit(tmp_path: Path) -> None:
    forge = as_bare(make_pr_repo(tmp_path))
    old_base, feature = head_sha(repo=forge, ref="main"), head_sha(repo=forge, ref="feature")

    result = merge(
        repo=forge, base="main", head="feature", method="merge", title="Merge #1", **AUTHOR
    )
    assert result.merged and not result.already_merged and result.conflict_files == []
    assert result.sha == head_sha(repo=forge, ref="main")
    assert parents(forge, "main") == [old_base, feature]
    assert git(forge, "log", "-1", "--format=%s|%an", "main") == "Merge #1|Merger"
    assert show(forge, "main", "shared.txt") == "one\nTWO\nthree"
    assert show(forge, "main", "main.txt") == "main"
    assert is_merged(repo=forge, base="main", head="feature")


def test_squash_merge(tmp_path: Path) -> None:
    forge = as_bare(make_pr_repo(tmp_path))
    old_base = head_sha(repo=forge, ref="main")

    result = merge(
        repo=forge, base="main", head="feature", method="squash", title="Squash #1", **AUTHOR
    )
    assert result.merged and result.sha == head_sha(repo=forge, ref="main")
    assert parents(forge, "main") == [old_base]
    assert git(forge, "log", "-1", "--format=%s", "main") == "Squash #1"
    assert show(forge, "main", "feature.txt") == "a\nb\nc"
    assert show(forge, "main", "shared.txt") == "one\nTWO\nthree"


def test_rebase_merge(tmp_path: Path) -> None:
    forge = as_bare(make_pr_repo(tmp_path))
    old_base = head_sha(repo=forge, ref="main")

    result = merge(
        repo=forge, base="main", head="feature", method="rebase", title="unused", **AUTHOR
    )
    assert result.merged and result.sha == head_sha(repo=forge, ref="main")
    assert git(forge, "rev-parse", "main~2") == old_base
    assert git(forge, "log", "--format=%s|%an|%cn", f"{old_base}..main").splitlines() == [
        "add feature|Dev|Merger",
        "edit shared|Dev|Merger",
    ]
    assert all(len(parents(forge, f"main~{i}")) == 1 for i in range(2))
    assert show(forge, "main", "feature.txt") == "a\nb\nc"
    assert git(forge, "worktree", "list", "--porcelain").count("worktree ") == 1


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_merge_is_idempotent(tmp_path: Path, method: str) -> None:
    forge = as_bare(make_pr_repo(tmp_path))
    first = merge(repo=forge, base="main", head="feature", method=method, title="t", **AUTHOR)
    again = merge(repo=forge, base="main", head="feature", method=method, title="t", **AUTHOR)
    assert not first.already_merged
    assert again.merged and again.already_merged and again.sha == first.sha
    assert head_sha(repo=forge, ref="main") == first.sha


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_conflict_leaves_base_untouched(tmp_path: Path, method: str) -> None:
    forge = as_bare(make_pr_repo(tmp_path, conflict=True))
    before = head_sha(repo=forge, ref="main")
    result = merge(repo=forge, base="main", head="feature", method=method, title="t", **AUTHOR)
    assert not result.merged and result.sha is None
    assert result.conflict_files == ["shared.txt"]
    assert head_sha(repo=forge, ref="main") == before


# --- merging into a checked-out branch ----------------------------------------------------


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_merge_into_checked_out_base_updates_work_tree(tmp_path: Path, method: str) -> None:
    repo = make_pr_repo(tmp_path)
    result = merge(repo=repo, base="main", head="feature", method=method, title="t", **AUTHOR)
    assert result.merged and result.sha == head_sha(repo=repo, ref="main")
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "feature.txt").read_text() == "a\nb\nc\n"
    assert (repo / "shared.txt").read_text() == "one\nTWO\nthree\n"


def test_merge_into_dirty_checked_out_base_fails(tmp_path: Path) -> None:
    repo = make_pr_repo(tmp_path)
    before = head_sha(repo=repo, ref="main")
    (repo / "main.txt").write_text("local edit\n")
    with pytest.raises(GitError, match="base branch main is checked out in .* uncommitted"):
        merge(repo=repo, base="main", head="feature", method="merge", title="t", **AUTHOR)
    assert head_sha(repo=repo, ref="main") == before
    assert (repo / "main.txt").read_text() == "local edit\n"


# --- checks ------------------------------------------------------------------------------


def test_run_checks_pass_on_head_checkout(tmp_path: Path) -> None:
    repo = make_pr_repo(tmp_path)
    scratch = tmp_path / "scratch"
    result = run_checks(
        repo=repo,
        head="feature",
        command="cat feature.txt && test ! -f main.txt",
        scratch_dir=scratch,
        timeout=60,
    )
    assert result.passed and result.exit_code == 0 and not result.timed_out
    assert result.output_tail == "a\nb\nc\n"
    assert list(scratch.iterdir()) == []
    assert git(repo, "status", "--porcelain") == ""


def test_run_checks_run_below_the_control_plane(tmp_path: Path) -> None:
    repo = make_pr_repo(tmp_path)
    result = run_checks(
        repo=repo, head="main", command="nice", scratch_dir=tmp_path / "scratch", timeout=60
    )
    assert int(result.output_tail) == min(os.nice(0) + CHECKS_NICENESS, 19)


def test_run_checks_failure_and_output_tail(tmp_path: Path) -> None:
    repo = make_pr_repo(tmp_path)
    result = run_checks(
        repo=repo,
        head="main",
        command="head -c 10000 /dev/zero | tr '\\0' x; echo END >&2; exit 3",
        scratch_dir=tmp_path / "scratch",
        timeout=60,
    )
    assert not result.passed and result.exit_code == 3 and not result.timed_out
    assert len(result.output_tail) == 4000 and result.output_tail.endswith("END\n")


def test_run_checks_timeout_kills_process_group(tmp_path: Path) -> None:
    repo = make_pr_repo(tmp_path)
    scratch = tmp_path / "scratch"
    started = time.monotonic()
    result = run_checks(
        repo=repo,
        head="main",
        command="echo started; (sleep 30; echo late) & sleep 30",
        scratch_dir=scratch,
        timeout=1,
    )
    assert time.monotonic() - started < 15
    assert result.timed_out and not result.passed and result.exit_code is None
    assert "started" in result.output_tail and "timed out" in result.output_tail
    assert list(scratch.iterdir()) == []

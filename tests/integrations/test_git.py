"""Worktree-side git helpers, exercised against real repositories in tmp_path."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from integrations.git import (
    SPARE_WORKTREES,
    GitError,
    branch_exists,
    commit_all,
    ensure_mirror,
    head_sha,
    is_git_url,
    list_worktrees,
    prepare_worktree,
    push_branch,
    remove_worktree,
    resolve_local_repo,
    run_git,
)


@pytest.fixture(autouse=True)
def _isolated_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # Proves the library works without any global identity or settings.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip()


def fresh_task_worktree(mirror: Path, path: Path, branch: str) -> str:
    return prepare_worktree(
        mirror=mirror,
        worktree_path=path,
        branch=branch,
        base_branch="main",
        from_existing_branch=False,
    )


def spares(mirror: Path) -> list[Path]:
    return list(mirror.with_name(mirror.name.removesuffix(".git") + ".spare").iterdir())


def commit_file(repo: Path, name: str, content: str, message: str = "change") -> str:
    (repo / name).write_text(content)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(path: Path, *, bare: bool = False) -> Path:
    """A repository with one commit on main; bare ones are cloned from a seed."""
    work = path.with_name(path.name + "-seed") if bare else path
    work.mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    commit_file(work, "README.md", "hello\n", "initial")
    if not bare:
        return work
    git(work.parent, "clone", "-q", "--bare", str(work), str(path))
    return path


# --- urls and local repositories -------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "https://github.com/owner/repo.git",
        "http://example.com/owner/repo",
        "ssh://git@example.com:2222/owner/repo.git",
        "git://example.com/repo.git",
        "file:///srv/repos/project",
        "git@github.com:owner/repo.git",
        "git@github.com:owner/repo",
    ],
)
def test_is_git_url_accepts(value: str) -> None:
    assert is_git_url(value)


@pytest.mark.parametrize(
    "value", ["/srv/repos/project", "owner/repo", "", "github.com/owner/repo", "repo.git"]
)
def test_is_git_url_rejects(value: str) -> None:
    assert not is_git_url(value)


def test_resolve_local_repo(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    bare = make_repo(tmp_path / "bare.git", bare=True)
    (repo / "sub").mkdir()
    plain = tmp_path / "plain"
    plain.mkdir()

    assert resolve_local_repo(str(repo)) == repo.resolve()
    assert resolve_local_repo(f"file://{repo}") == repo.resolve()
    assert resolve_local_repo(str(bare)) == bare.resolve()
    assert resolve_local_repo(f"file://{bare}") == bare.resolve()
    assert resolve_local_repo(str(repo / "sub")) is None
    assert resolve_local_repo(str(plain)) is None
    assert resolve_local_repo(str(tmp_path / "missing")) is None
    assert resolve_local_repo("https://github.com/owner/repo.git") is None
    assert resolve_local_repo("relative/path") is None


def test_resolve_local_repo_beyond_the_common_layouts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    # A working tree's .git directory is no repository root, though it looks like one.
    assert resolve_local_repo(str(repo / ".git")) is None
    # A linked worktree has a .git file: git follows it and the worktree is a root.
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    assert resolve_local_repo(str(linked)) == linked.resolve()
    # A directory with a stray HEAD file but no repository behind it.
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "HEAD").write_text("ref: refs/heads/main\n")
    assert resolve_local_repo(str(odd)) is None


def test_git_error_carries_command_and_stderr(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    with pytest.raises(GitError) as exc:
        run_git(["rev-parse", "--verify", "no-such-ref"], cwd=repo)
    assert "git rev-parse --verify no-such-ref" in str(exc.value)
    assert "Needed a single revision" in str(exc.value)


def test_credentials_are_redacted_and_nothing_prompts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    with pytest.raises(GitError) as exc:
        run_git(["ls-remote", "https://user:s3cret@127.0.0.1:9/x.git"], cwd=repo, timeout=30)
    assert "s3cret" not in str(exc.value)
    assert "***@127.0.0.1" in str(exc.value)


# --- mirror ------------------------------------------------------------------------------


def test_ensure_mirror_clones_then_fetches_and_prunes(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "origin")
    git(origin, "branch", "doomed")
    cache = tmp_path / "cache"

    mirror = ensure_mirror(repo_url=str(origin), cache_dir=cache)
    assert mirror.parent == cache and mirror.name.endswith(".git")
    assert head_sha(repo=mirror, ref="main") == head_sha(repo=origin)
    assert branch_exists(repo=mirror, branch="doomed")

    new = commit_file(origin, "a.txt", "a\n")
    git(origin, "branch", "-D", "doomed")
    assert ensure_mirror(repo_url=str(origin), cache_dir=cache) == mirror
    assert head_sha(repo=mirror, ref="main") == new
    assert not branch_exists(repo=mirror, branch="doomed")


def test_ensure_mirror_keeps_branches_checked_out_in_worktrees(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "origin")
    cache = tmp_path / "cache"
    mirror = ensure_mirror(repo_url=str(origin), cache_dir=cache)
    wt = tmp_path / "wt"
    fresh_task_worktree(mirror, wt, "optio/t1")
    work = commit_file(wt, "w.txt", "work\n")

    ensure_mirror(repo_url=str(origin), cache_dir=cache)
    assert head_sha(repo=mirror, ref="refs/heads/optio/t1") == work


def test_ensure_mirror_concurrent_callers(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "origin")
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(max_workers=4) as pool:
        paths = list(
            pool.map(lambda _: ensure_mirror(repo_url=str(origin), cache_dir=cache), range(4))
        )
    assert len(set(paths)) == 1
    assert head_sha(repo=paths[0], ref="main") == head_sha(repo=origin)
    assert not list(cache.glob("*.tmp"))


# --- worktrees ---------------------------------------------------------------------------


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    origin = make_repo(tmp_path / "origin")
    commit_file(origin, "base.txt", "base\n")
    git(origin, "checkout", "-q", "-b", "existing")
    commit_file(origin, "existing.txt", "from existing\n")
    git(origin, "checkout", "-q", "main")
    return ensure_mirror(repo_url=str(origin), cache_dir=tmp_path / "cache")


def test_prepare_worktree_from_base(tmp_path: Path, mirror: Path) -> None:
    wt = tmp_path / "wt"
    sha = fresh_task_worktree(mirror, wt, "optio/t1")
    assert sha == head_sha(repo=mirror, ref="main")
    assert git(wt, "symbolic-ref", "--short", "HEAD") == "optio/t1"
    assert (wt / "base.txt").exists() and not (wt / "existing.txt").exists()


def test_prepare_worktree_reuse_resets_clean(tmp_path: Path, mirror: Path) -> None:
    wt = tmp_path / "wt"
    kwargs = {"mirror": mirror, "worktree_path": wt, "branch": "optio/t1", "base_branch": "main"}
    first = prepare_worktree(**kwargs, from_existing_branch=False)
    commit_file(wt, "committed.txt", "x\n")
    (wt / "base.txt").write_text("modified\n")
    (wt / "untracked.txt").write_text("junk\n")
    (wt / "ignored-by-nothing").mkdir()

    again = prepare_worktree(**kwargs, from_existing_branch=False)
    assert again == first
    assert git(wt, "status", "--porcelain", "--ignored") == ""
    assert (wt / "base.txt").read_text() == "base\n"
    assert not (wt / "committed.txt").exists()


def test_prepare_worktree_from_existing_branch(tmp_path: Path, mirror: Path) -> None:
    wt = tmp_path / "wt"
    sha = prepare_worktree(
        mirror=mirror,
        worktree_path=wt,
        branch="existing",
        base_branch="main",
        from_existing_branch=True,
    )
    assert sha == head_sha(repo=mirror, ref="refs/heads/existing")
    assert (wt / "existing.txt").read_text() == "from existing\n"

    with pytest.raises(GitError, match="does not exist"):
        prepare_worktree(
            mirror=mirror,
            worktree_path=tmp_path / "wt2",
            branch="nope",
            base_branch="main",
            from_existing_branch=True,
        )


def test_prepare_worktree_restarts_existing_branch_from_base(tmp_path: Path, mirror: Path) -> None:
    sha = fresh_task_worktree(mirror, tmp_path / "wt", "existing")
    assert sha == head_sha(repo=mirror, ref="main")


def test_optio_files_are_never_committed(tmp_path: Path, mirror: Path) -> None:
    wt = tmp_path / "wt"
    fresh_task_worktree(mirror, wt, "optio/t1")
    (wt / ".optio").mkdir()
    (wt / ".optio" / "state.json").write_text("{}")
    (wt / ".optio-run-token").write_text("secret")
    assert not commit_all(worktree=wt, message="m", author_name="A", author_email="a@x")

    # A retry keeps the runner's control files in place.
    fresh_task_worktree(mirror, wt, "optio/t1")
    assert (wt / ".optio-run-token").read_text() == "secret"
    excludes = (mirror / "info" / "exclude").read_text().splitlines()
    assert excludes.count(".optio/") == 1 and excludes.count(".optio-run-token") == 1


def test_commit_all(tmp_path: Path, mirror: Path) -> None:
    wt = tmp_path / "wt"
    before = fresh_task_worktree(mirror, wt, "optio/t1")
    assert not commit_all(worktree=wt, message="nothing", author_name="A", author_email="a@x")
    assert head_sha(repo=wt) == before

    (wt / "new.txt").write_text("new\n")
    (wt / "base.txt").unlink()
    assert commit_all(worktree=wt, message="agent work", author_name="Bot", author_email="b@x")
    assert git(wt, "rev-parse", "HEAD^") == before
    assert git(wt, "log", "-1", "--format=%an <%ae>|%s") == "Bot <b@x>|agent work"
    assert git(wt, "status", "--porcelain") == ""


def test_remove_worktree_is_idempotent(tmp_path: Path, mirror: Path) -> None:
    wt = tmp_path / "wt"
    fresh_task_worktree(mirror, wt, "optio/t1")
    (wt / "dirty.txt").write_text("x")
    remove_worktree(mirror=mirror, worktree_path=wt)
    assert not wt.exists()
    assert str(wt) not in git(mirror, "worktree", "list")
    remove_worktree(mirror=mirror, worktree_path=wt)


# --- push --------------------------------------------------------------------------------


@pytest.mark.parametrize("bare", [True, False])
def test_push_branch(tmp_path: Path, bare: bool) -> None:
    origin = make_repo(tmp_path / "origin.git" if bare else tmp_path / "origin", bare=bare)
    mirror = ensure_mirror(repo_url=str(origin), cache_dir=tmp_path / "cache")
    wt = tmp_path / "wt"
    fresh_task_worktree(mirror, wt, "optio/t1")
    commit_file(wt, "feature.txt", "feature\n")

    sha = push_branch(worktree=wt, remote_url=str(origin), branch="optio/t1")
    assert sha == head_sha(repo=wt)
    assert head_sha(repo=origin, ref="refs/heads/optio/t1") == sha
    assert push_branch(worktree=wt, remote_url=f"file://{origin}", branch="optio/t1") == sha
    if not bare:
        assert git(origin, "status", "--porcelain") == ""


def test_push_branch_force(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "origin.git", bare=True)
    mirror = ensure_mirror(repo_url=str(origin), cache_dir=tmp_path / "cache")
    wt = tmp_path / "wt"
    fresh_task_worktree(mirror, wt, "optio/t1")
    commit_file(wt, "one.txt", "1\n")
    push_branch(worktree=wt, remote_url=str(origin), branch="optio/t1")
    git(wt, "reset", "-q", "--hard", "HEAD^")
    rewritten = commit_file(wt, "two.txt", "2\n")

    with pytest.raises(GitError, match="push"):
        push_branch(worktree=wt, remote_url=str(origin), branch="optio/t1")
    assert push_branch(worktree=wt, remote_url=str(origin), branch="optio/t1", force=True) == (
        rewritten
    )
    assert head_sha(repo=origin, ref="refs/heads/optio/t1") == rewritten


def test_released_worktree_is_reused_clean_by_the_next_task(tmp_path: Path, mirror: Path) -> None:
    first = tmp_path / "wt" / "task-1"
    fresh_task_worktree(mirror, first, "optio/task-1")
    commit_file(first, "one.txt", "one\n")
    (first / "junk.txt").write_text("left behind\n")
    (first / "base.txt").write_text("edited, never committed\n")
    remove_worktree(mirror=mirror, worktree_path=first)
    assert not first.exists()
    assert len(spares(mirror)) == 1

    second = tmp_path / "wt" / "task-2"
    sha = fresh_task_worktree(mirror, second, "optio/task-2")
    assert sha == head_sha(repo=mirror, ref="main") == head_sha(repo=second)
    assert git(second, "rev-parse", "--abbrev-ref", "HEAD").strip() == "optio/task-2"
    assert git(second, "status", "--porcelain", "--ignored") == ""
    assert (second / "base.txt").read_text() == "base\n"
    assert not (second / "one.txt").exists() and not (second / "junk.txt").exists()
    # The first task's branch was freed: a retry can check it out again.
    again = prepare_worktree(
        mirror=mirror,
        worktree_path=first,
        branch="optio/task-1",
        base_branch="main",
        from_existing_branch=True,
    )
    assert (first / "one.txt").read_text() == "one\n" and again == head_sha(repo=first)


def test_spare_worktrees_are_bounded(tmp_path: Path, mirror: Path) -> None:
    paths = [tmp_path / "wt" / f"task-{n}" for n in range(SPARE_WORKTREES + 2)]
    for n, path in enumerate(paths):
        fresh_task_worktree(mirror, path, f"optio/task-{n}")
    for path in paths:
        remove_worktree(mirror=mirror, worktree_path=path)
    kept = spares(mirror)
    assert len(kept) == SPARE_WORKTREES
    registered = {wt.path.resolve() for wt in list_worktrees(mirror)}
    assert registered == {spare.resolve() for spare in kept}

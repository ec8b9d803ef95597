"""A run's sandbox and the other worktrees of its repository's mirror.

Every worktree of a mirror has its admin entry under `<mirror>/worktrees/<name>/`; the
sandbox binds each entry's `commondir`, `gitdir` and `config.worktree` read-only, so a
run cannot point git, run later by Optio outside the sandbox, somewhere else. Other
tasks' worktrees come and go while a run starts: with twenty tasks on one repository,
one went between the sandbox listing its files and bwrap binding them, and the run
failed before its agent started (`bwrap: Can't get type of source ...commondir`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from integrations.sandbox import Sandbox, sandbox_env
from tests.integrations.test_git import commit_file, ensure_mirror, git, make_repo


def _mirror_with_worktrees(tmp_path: Path, names: list[str]) -> Path:
    origin = make_repo(tmp_path / "origin")
    commit_file(origin, "base.txt", "base\n")
    mirror = ensure_mirror(repo_url=str(origin), cache_dir=tmp_path / "cache")
    for name in names:
        git(mirror, "worktree", "add", "-q", "-b", f"b-{name}", str(tmp_path / name), "main")
    return mirror


def _run(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        command, env=sandbox_env(home=home), capture_output=True, text=True, timeout=60
    )


def test_a_worktree_removed_while_the_run_starts_does_not_fail_it(tmp_path: Path) -> None:
    mirror = _mirror_with_worktrees(tmp_path, ["mine", "gone"])
    command = Sandbox(worktree=tmp_path / "mine", git_dir=mirror).command(
        ["git", "status", "--porcelain"]
    )
    # Another task's worktree is released between the command's making and its start.
    git(mirror, "worktree", "remove", "--force", str(tmp_path / "gone"))

    done = _run(command, tmp_path)
    assert done.returncode == 0, done.stderr


def test_other_worktrees_entries_stay_read_only(tmp_path: Path) -> None:
    mirror = _mirror_with_worktrees(tmp_path, ["mine", "other"])
    entry = mirror / "worktrees" / "other"
    commondir = (entry / "commondir").read_text()
    command = Sandbox(worktree=tmp_path / "mine", git_dir=mirror).command(
        ["sh", "-c", f"echo /elsewhere > {entry / 'commondir'}"]
    )

    done = _run(command, tmp_path)
    assert done.returncode != 0
    assert "Read-only file system" in done.stderr
    assert (entry / "commondir").read_text() == commondir


def test_the_run_commits_in_its_worktree_and_cannot_touch_a_later_one(tmp_path: Path) -> None:
    mirror = _mirror_with_worktrees(tmp_path, ["mine"])
    (tmp_path / "mine" / "new.txt").write_text("new\n")
    later = mirror / "worktrees" / "later" / "commondir"
    script = (
        "git add new.txt && git -c user.name=a -c user.email=a@b commit -q -m new && "
        f"until [ -e {later} ]; do sleep 0.01; done; echo /elsewhere > {later}"
    )
    command = Sandbox(worktree=tmp_path / "mine", git_dir=mirror).command(["sh", "-c", script])
    home = tmp_path / "home"
    home.mkdir()
    started = subprocess.Popen(
        command, env=sandbox_env(home=home), stderr=subprocess.PIPE, text=True
    )
    # A worktree another task adds while this run goes on.
    git(mirror, "worktree", "add", "-q", "-b", "b-later", str(tmp_path / "later"), "main")
    _, stderr = started.communicate(timeout=60)

    assert git(tmp_path / "mine", "log", "-1", "--format=%s") == "new"
    assert started.returncode != 0 and "Read-only file system" in stderr
    assert later.read_text().strip() != "/elsewhere"

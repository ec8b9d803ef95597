"""The "local" forge: a repository on disk acts as the remote, and merging is plain git.

PR records live in the database; this module only inspects and updates the repository.
Merges are built with plumbing so they also work in bare repositories.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from integrations.git import (
    GitError,
    branch_exists,
    head_sha,
    identity_args,
    list_worktrees,
    run_git,
    run_git_result,
)
from integrations.sandbox import Sandbox, sandbox_env

OUTPUT_TAIL_CHARS = 4000
CHECKS_NICENESS = 10

MergeMethod = Literal["merge", "squash", "rebase"]


@dataclass(frozen=True)
class DiffStats:
    additions: int
    deletions: int
    changed_files: int


@dataclass(frozen=True)
class MergeCheck:
    mergeable: bool
    conflict_files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MergeResult:
    merged: bool
    sha: str | None
    already_merged: bool = False
    conflict_files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    exit_code: int | None
    output_tail: str
    timed_out: bool


def diff_stats(*, repo: Path, base: str, head: str) -> DiffStats:
    out = run_git(["diff", "--numstat", "--end-of-options", f"{base}...{head}"], cwd=repo)
    additions = deletions = files = 0
    for line in out.splitlines():
        added, deleted, _ = line.split("\t", 2)
        files += 1
        # Binary files report "-" and, as on GitHub, count as changed without line counts.
        additions += int(added) if added.isdigit() else 0
        deletions += int(deleted) if deleted.isdigit() else 0
    return DiffStats(additions=additions, deletions=deletions, changed_files=files)


def is_merged(*, repo: Path, base: str, head: str) -> bool:
    res = run_git_result(
        ["merge-base", "--is-ancestor", "--end-of-options", head, base], cwd=repo, ok_codes=(0, 1)
    )
    return res.returncode == 0


def _merge_tree(repo: Path, base: str, head: str) -> tuple[str, list[str]]:
    """Return (tree, conflict_files) of merging head into base, touching no refs."""
    res = run_git_result(
        [
            *("merge-tree", "--write-tree", "-z", "--name-only", "--no-messages"),
            *("--end-of-options", base, head),
        ],
        cwd=repo,
        ok_codes=(0, 1),
    )
    tree, *names = res.stdout.split("\0")
    conflicts = list(dict.fromkeys(n for n in names if n)) if res.returncode == 1 else []
    return tree.strip(), conflicts


def check_mergeable(*, repo: Path, base: str, head: str) -> MergeCheck:
    _, conflicts = _merge_tree(repo, base, head)
    return MergeCheck(mergeable=not conflicts, conflict_files=conflicts)


def _checked_out_base(repo: Path, base: str) -> Path | None:
    for wt in list_worktrees(repo):
        if wt.branch == base:
            return wt.path
    return None


def _rebase(
    repo: Path, base_sha: str, head_sha_: str, ident: list[str]
) -> tuple[str | None, list[str]]:
    """Replay head's commits onto base in a throwaway worktree; (new_sha, conflicts)."""
    tmp = Path(tempfile.mkdtemp(prefix="optio-rebase-"))
    wt = tmp / "wt"
    try:
        run_git(["worktree", "add", "--quiet", "--detach", str(wt), head_sha_], cwd=repo)
        res = run_git_result(
            [*ident, "rebase", "--quiet", "--no-verify", "--no-autostash", base_sha],
            cwd=wt,
            ok_codes=(0, 1),
        )
        if res.returncode != 0:
            unmerged = run_git(["diff", "--name-only", "--diff-filter=U"], cwd=wt)
            run_git_result(["rebase", "--abort"], cwd=wt, ok_codes=(0, 1, 128))
            conflicts = unmerged.splitlines()
            if not conflicts:
                raise GitError(f"git rebase failed: {res.stderr.strip()[-2000:]}")
            return None, conflicts
        return head_sha(repo=wt), []
    finally:
        run_git_result(
            ["worktree", "remove", "--force", "--force", str(wt)], cwd=repo, ok_codes=(0, 128)
        )
        shutil.rmtree(tmp, ignore_errors=True)
        run_git(["worktree", "prune"], cwd=repo)


_GIT_DIRS: dict[Path, Path] = {}


def _git_dir(repo: Path) -> Path:
    """The repository's git dir, asked of git once per process (a process per merge
    otherwise); asked again if it has gone, as when a repository is recreated."""
    known = _GIT_DIRS.get(repo)
    if known is None or not known.is_dir():
        known = _GIT_DIRS[repo] = Path(run_git(["rev-parse", "--absolute-git-dir"], cwd=repo))
    return known


def merge(
    *,
    repo: Path,
    base: str,
    head: str,
    method: MergeMethod,
    title: str,
    author_name: str,
    author_email: str,
) -> MergeResult:
    """Merge head into base; merges into one repository are serialised across processes,
    so many PRs auto-merging at once each land on the base they were checked against."""
    with open(_git_dir(repo) / "optio-merge.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _merge_locked(
                repo=repo,
                base=base,
                head=head,
                method=method,
                title=title,
                author_name=author_name,
                author_email=author_email,
            )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _merge_locked(
    *,
    repo: Path,
    base: str,
    head: str,
    method: MergeMethod,
    title: str,
    author_name: str,
    author_email: str,
) -> MergeResult:
    base_ref = f"refs/heads/{base}"
    if head.startswith("-"):
        # rev-parse without --verify echoes options instead of refusing them.
        raise GitError(f"Refusing the revision {head!r}: it reads like an option")
    # Three lookups, one process: a missing ref fails the whole call with git's message.
    base_sha, head_commit, base_tree = run_git(
        ["rev-parse", f"{base_ref}^{{commit}}", f"{head}^{{commit}}", f"{base_ref}^{{tree}}"],
        cwd=repo,
    ).split()
    if is_merged(repo=repo, base=base_sha, head=head_commit):
        return MergeResult(merged=True, sha=base_sha, already_merged=True)
    tree, conflicts = _merge_tree(repo, base_sha, head_commit)
    if conflicts:
        return MergeResult(merged=False, sha=None, conflict_files=conflicts)
    if method != "merge" and tree == base_tree:
        # Squash and rebase leave head unreachable from base; a merge that would change
        # nothing is how a repeated request recognises it already happened.
        return MergeResult(merged=True, sha=base_sha, already_merged=True)

    worktree = _checked_out_base(repo, base)
    if worktree is not None:
        dirty = run_git(["status", "--porcelain", "--untracked-files=no"], cwd=worktree)
        if dirty:
            raise GitError(
                f"base branch {base} is checked out in {worktree} with uncommitted changes; "
                "commit or stash them, or use a bare repository"
            )

    ident = identity_args(author_name, author_email)
    if method == "rebase":
        new_sha, conflicts = _rebase(repo, base_sha, head_commit, ident)
        if new_sha is None:
            return MergeResult(merged=False, sha=None, conflict_files=conflicts)
        if new_sha == base_sha:
            return MergeResult(merged=True, sha=base_sha, already_merged=True)
    else:
        parents = ["-p", base_sha] + (["-p", head_commit] if method == "merge" else [])
        new_sha = run_git(
            [*ident, "commit-tree", "--no-gpg-sign", tree, *parents, "-m", title], cwd=repo
        )

    if worktree is not None:
        # Moving the ref behind a checked-out branch would make the work tree look dirty;
        # a fast-forward there updates both and still fails if base moved meanwhile.
        run_git(["merge", "--ff-only", "--quiet", "--no-verify", new_sha], cwd=worktree)
    else:
        run_git(
            ["update-ref", "-m", f"optio: {method} {head}", base_ref, new_sha, base_sha], cwd=repo
        )
    return MergeResult(merged=True, sha=new_sha)


def _tail(path: Path) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - OUTPUT_TAIL_CHARS * 4))
        return fh.read().decode(errors="replace")[-OUTPUT_TAIL_CHARS:]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_checks(
    *, repo: Path, head: str, command: str, scratch_dir: Path, timeout: float
) -> CheckResult:
    sha = head_sha(repo=repo, ref=head)
    scratch_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="optio-checks-", dir=scratch_dir))
    src = tmp / "src"
    log = tmp / "output.log"
    try:
        # A shared clone leaves the forge repository itself untouched (no worktree metadata).
        run_git(
            [
                "-c",
                "protocol.file.allow=always",
                "clone",
                "--quiet",
                "--shared",
                "--no-checkout",
                "--",
                str(repo),
                str(src),
            ],
            cwd=tmp,
        )
        run_git(["checkout", "--quiet", "--detach", sha], cwd=src)
        # The repository's checks are user code, like an agent: they run in the same
        # sandbox (they see their checkout and nothing else), below the control plane in
        # the CPU queue (runner/__main__.py), so the API stays responsive.
        argv = Sandbox(worktree=src).command(["bash", "-c", command])
        if (nice := shutil.which("nice")) is not None:
            argv = [nice, "-n", str(CHECKS_NICENESS), *argv]
        # Output goes to a file: a pipe held open by an escaped grandchild would hang us.
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                argv,
                cwd=src,
                env=sandbox_env(home="/tmp"),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code: int | None = proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
                code, timed_out = None, True
            # Background jobs the checks left behind must not outlive their checkout.
            _kill_group(proc.pid)
        output = _tail(log)
        if timed_out:
            output = (output + f"\n[optio] checks timed out after {timeout:g}s")[
                -OUTPUT_TAIL_CHARS:
            ]
        return CheckResult(
            passed=code == 0, exit_code=code, output_tail=output, timed_out=timed_out
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def delete_branch(*, repo: Path, branch: str) -> bool:
    """Delete a task branch from the forge repository; False when it was not there."""
    if not branch_exists(repo=repo, branch=branch):
        return False
    run_git(["branch", "-D", "--", branch], cwd=repo)
    return True

"""Synchronous git operations over the real `git` CLI.

Called from sync Temporal activities (thread pool) and from the in-sandbox runner, so
everything here blocks, never prompts, and never depends on the user's global git identity.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from schemas.refs import branch_name_problem

# Never committed: the runner's control dir and the per-run secret.
EXCLUDED_PATHS = (".optio/", ".optio-run-token")

_STDERR_TAIL = 2000

# Inherited from a surrounding git process (e.g. when run from a hook) they would redirect
# every command to the wrong repository.
_LEAKY_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX")

_URL_RE = re.compile(r"^(https?|ssh|git|file)://\S+$", re.IGNORECASE)
_SCP_RE = re.compile(r"^[\w.-]+@[\w.-]+:(?!/)[\w./~-]+$")
_USERINFO_RE = re.compile(r"(://)[^/@\s]+@")


class GitError(Exception):
    """A git command failed; the message carries the command and the tail of stderr."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str


def _redact(text: str) -> str:
    # Remote URLs may embed tokens; they must not end up in logs or workflow history.
    return _USERINFO_RE.sub(r"\1***@", text)


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_EDITOR"] = "true"
    env["GIT_SEQUENCE_EDITOR"] = "true"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    if extra:
        env.update(extra)
    return env


def run_git_result(
    args: list[str],
    *,
    cwd: Path | None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    ok_codes: tuple[int, ...] = (0,),
) -> GitResult:
    """Like `run_git` but for commands whose non-zero exit codes carry meaning."""
    cmd = ["git", *args]
    shown = _redact(" ".join(cmd))
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=git_env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"{shown} timed out after {timeout:g}s") from exc
    except OSError as exc:
        raise GitError(f"{shown} could not be started: {exc}") from exc
    if proc.returncode not in ok_codes:
        tail = _redact(proc.stderr.strip()[-_STDERR_TAIL:])
        raise GitError(
            f"{shown} failed (exit {proc.returncode}): {tail}",
            returncode=proc.returncode,
            stderr=tail,
        )
    return GitResult(proc.returncode, proc.stdout, proc.stderr)


def run_git(
    args: list[str],
    *,
    cwd: Path | None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> str:
    return run_git_result(args, cwd=cwd, env=env, timeout=timeout).stdout.strip()


def identity_args(name: str, email: str) -> list[str]:
    # Signing could prompt for a passphrase and a global identity may be absent.
    return ["-c", f"user.name={name}", "-c", f"user.email={email}", "-c", "commit.gpgsign=false"]


def require_branch_name(name: str) -> None:
    """GitError unless `name` is a branch name git accepts (never an option, never a range).

    Names from requests are refused at the API; this also covers names from forges
    (a PR's head branch) and anything stored before the API checked.
    """
    problem = branch_name_problem(name)
    if problem is not None:
        raise GitError(f"Refusing the branch name {name!r}: {problem}")


def is_git_url(value: str) -> bool:
    return bool(_URL_RE.match(value) or _SCP_RE.match(value))


def resolve_local_repo(repo_url: str) -> Path | None:
    """The root of the local repository `repo_url` names, or None if it names none.

    Asked on every POST /api/tasks and by every local forge step, so the common answers
    come from the file system; only a layout that looks neither like a repository nor
    like a plain directory is put to `git rev-parse`.
    """
    if repo_url.lower().startswith("file://"):
        parsed = urlparse(repo_url)
        if parsed.netloc not in ("", "localhost"):
            return None
        raw = unquote(parsed.path)
    elif os.path.isabs(repo_url):
        raw = repo_url
    else:
        return None
    path = Path(raw)
    if not path.is_dir():
        return None
    resolved = path.resolve()
    layout = _repo_layout(resolved)
    if layout == "repository":
        return resolved
    if layout == "plain":
        return None
    return _resolve_with_git(path, resolved)


def _looks_like_git_dir(path: Path) -> bool:
    # What git itself checks (setup.c, is_git_directory): HEAD, objects/ and refs/.
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def _declares_bare(git_dir: Path) -> bool:
    try:
        config = (git_dir / "config").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"^\s*bare\s*=\s*true\s*$", config, re.MULTILINE | re.IGNORECASE) is not None


def _repo_layout(path: Path) -> str:
    """Either "repository" (its root), "plain" (no git here at all) or "unsure"."""
    dot_git = path / ".git"
    if dot_git.is_dir() and _looks_like_git_dir(dot_git):
        return "repository"
    if _looks_like_git_dir(path):
        # A bare repository, or the .git directory of a working tree (not a root).
        return "repository" if _declares_bare(path) else "unsure"
    if dot_git.exists():
        return "unsure"  # a .git file (linked worktree, submodule): let git follow it
    return "plain" if not (path / "HEAD").exists() else "unsure"


def _resolve_with_git(path: Path, resolved: Path) -> Path | None:
    try:
        git_dir = run_git(["rev-parse", "--absolute-git-dir"], cwd=path, timeout=30)
        bare = run_git(["rev-parse", "--is-bare-repository"], cwd=path, timeout=30) == "true"
        top = None if bare else run_git(["rev-parse", "--show-toplevel"], cwd=path, timeout=30)
    except GitError:
        return None
    # rev-parse also succeeds in any subdirectory of a repository; only the repo itself counts.
    root = Path(git_dir) if bare else Path(top or "")
    return resolved if root.resolve() == resolved else None


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def mirror_path(*, repo_url: str, cache_dir: Path) -> Path:
    """Where ensure_mirror keeps the bare mirror of repo_url."""
    key = hashlib.sha256(repo_url.encode()).hexdigest()[:16]
    return cache_dir / f"{key}.git"


def _mirror_lock(mirror: Path) -> Path:
    return mirror.with_name(mirror.name.removesuffix(".git") + ".lock")


@dataclass(frozen=True)
class WorktreeInfo:
    path: Path
    branch: str | None  # short name; None when detached or bare


def list_worktrees(repo: Path) -> list[WorktreeInfo]:
    out = run_git(["worktree", "list", "--porcelain"], cwd=repo)
    result: list[WorktreeInfo] = []
    for block in out.split("\n\n"):
        path: Path | None = None
        branch: str | None = None
        bare = False
        for line in block.splitlines():
            if line.startswith("worktree "):
                path = Path(line[len("worktree ") :])
            elif line.startswith("branch refs/heads/"):
                branch = line[len("branch refs/heads/") :]
            elif line == "bare":
                bare = True
        if path is not None and not bare:
            result.append(WorktreeInfo(path, branch))
    return result


def auth_env(auth_header: str | None) -> dict[str, str] | None:
    """The credential for one git process, through its environment: never on the command
    line (visible in ps) nor in a config file a later agent could read."""
    if not auth_header:
        return None
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: {auth_header}",
    }


def ensure_mirror(
    *,
    repo_url: str,
    cache_dir: Path,
    branches: Sequence[str] | None = None,
    auth_header: str | None = None,
) -> Path:
    """A bare mirror of `repo_url`, fresh for `branches` (every branch when None).

    Naming the branches a run needs keeps the fetch cheap however many branches the
    origin has accumulated (every task pushes one). `auth_header` is the forge credential
    for a private repository.
    """
    for branch in branches or ():
        require_branch_name(branch)
    mirror = mirror_path(repo_url=repo_url, cache_dir=cache_dir)
    with _locked(_mirror_lock(mirror)):
        if (mirror / "HEAD").exists():
            # Branches checked out by live worktrees are local work in progress: a prune would
            # delete them and an update is refused anyway, so leave them out of the refspec.
            busy = {wt.branch for wt in list_worktrees(mirror) if wt.branch}
            if branches is None:
                refspecs = [
                    "+refs/heads/*:refs/heads/*",
                    *(f"^refs/heads/{b}" for b in sorted(busy)),
                ]
            else:
                wanted = sorted(set(branches) - busy)
                refspecs = [f"+refs/heads/{b}:refs/heads/{b}" for b in wanted]
                if not refspecs:
                    return mirror
            run_git(
                ["-c", "protocol.file.allow=always", "fetch", "--prune", "origin", *refspecs],
                cwd=mirror,
                env=auth_env(auth_header),
            )
            return mirror
        # Clone aside and rename so an interrupted clone never looks like a usable mirror.
        tmp = mirror.with_name(mirror.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        run_git(
            [
                "-c",
                "protocol.file.allow=always",
                "clone",
                "--bare",
                "--quiet",
                "--",
                repo_url,
                str(tmp),
            ],
            cwd=cache_dir,
            env=auth_env(auth_header),
        )
        os.replace(tmp, mirror)
    return mirror


def _add_excludes(common_dir: Path) -> None:
    exclude = common_dir / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    existing = exclude.read_text().splitlines() if exclude.exists() else []
    missing = [p for p in EXCLUDED_PATHS if p not in existing]
    if missing:
        prefix = "\n" if existing and not exclude.read_text().endswith("\n") else ""
        with open(exclude, "a") as fh:
            fh.write(prefix + "\n".join(missing) + "\n")


def prepare_worktree(
    *,
    mirror: Path,
    worktree_path: Path,
    branch: str,
    base_branch: str,
    from_existing_branch: bool,
) -> str:
    require_branch_name(branch)
    require_branch_name(base_branch)
    with _locked(_mirror_lock(mirror)):
        start = branch if from_existing_branch else base_branch
        try:
            target = head_sha(repo=mirror, ref=f"refs/heads/{start}")
        except GitError as exc:
            if from_existing_branch:
                raise GitError(f"branch {branch!r} does not exist in {mirror}") from exc
            raise
        wanted = worktree_path.resolve()
        existing = next((wt for wt in list_worktrees(mirror) if wt.path.resolve() == wanted), None)
        if existing is not None and existing.branch != branch:
            run_git(["worktree", "remove", "--force", "--force", str(worktree_path)], cwd=mirror)
            existing = None
        if existing is None and _reuse_spare(mirror, worktree_path, branch, target):
            pass
        elif existing is None:
            if from_existing_branch:
                add = ["--", str(worktree_path), branch]
            else:
                add = ["-B", branch, "--", str(worktree_path), base_branch]
            try:
                run_git(["worktree", "add", "--quiet", *add], cwd=mirror)
            except GitError:
                # A worktree deleted without git knowing still holds its branch: forget
                # such registrations and try once more (pruning every time costs a process).
                run_git(["worktree", "prune"], cwd=mirror)
                run_git(["worktree", "add", "--quiet", *add], cwd=mirror)
        else:
            # A retried attempt must start exactly where a fresh one would.
            repair_git_pointer(mirror=mirror, worktree_path=worktree_path)
            run_git(["reset", "--hard", "--quiet", target], cwd=worktree_path)
            clean = ["clean", "-ffdxq", *(a for p in EXCLUDED_PATHS for a in ("-e", p))]
            run_git(clean, cwd=worktree_path)
        # The worktrees of a bare mirror share its git dir: the excludes go there.
        _add_excludes(mirror)
        # Added at, or reset to, `target`: that is HEAD now.
        return target


def commit_all(*, worktree: Path, message: str, author_name: str, author_email: str) -> bool:
    run_git(["add", "-A"], cwd=worktree)
    staged = run_git_result(["diff", "--cached", "--quiet"], cwd=worktree, ok_codes=(0, 1))
    if staged.returncode == 0:
        return False
    run_git(
        [
            *identity_args(author_name, author_email),
            "commit",
            "--quiet",
            "--no-verify",
            "-m",
            message,
        ],
        cwd=worktree,
    )
    return True


def push_branch(
    *,
    worktree: Path,
    remote_url: str,
    branch: str,
    force: bool = False,
    auth_header: str | None = None,
    lease: str | None = None,
) -> str:
    require_branch_name(branch)
    sha = head_sha(repo=worktree, ref=f"refs/heads/{branch}")
    refspec = f"{'+' if force else ''}refs/heads/{branch}:refs/heads/{branch}"
    # A rebase (to resolve conflicts) rewrites the branch: replace it only if nobody moved
    # it since the run started from `lease`.
    extra = [f"--force-with-lease=refs/heads/{branch}:{lease}"] if lease and not force else []
    env = auth_env(auth_header)
    run_git(
        [
            "-c",
            "protocol.file.allow=always",
            "push",
            "--quiet",
            "--no-verify",
            *extra,
            "--",
            remote_url,
            refspec,
        ],
        cwd=worktree,
        env=env,
    )
    return sha


def head_sha(*, repo: Path, ref: str = "HEAD") -> str:
    return run_git(["rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}"], cwd=repo)


def branch_head(*, repo: Path, branch: str) -> str | None:
    """The commit `branch` points at, or None if there is no such branch: one process."""
    res = run_git_result(
        ["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"],
        cwd=repo,
        ok_codes=(0, 1),
    )
    return res.stdout.strip() if res.returncode == 0 else None


def branch_exists(*, repo: Path, branch: str) -> bool:
    res = run_git_result(
        ["show-ref", "--verify", "--quiet", f"refs/heads/{branch}"], cwd=repo, ok_codes=(0, 1)
    )
    return res.returncode == 0


# Finished worktrees kept per mirror for the next task. Checking out a whole repository
# writes every file of it (a third of a CPU-second for a thousand files here); a spare
# switched to the next task's start rewrites only what differs.
SPARE_WORKTREES = 4


def _spares_dir(mirror: Path) -> Path:
    return mirror.with_name(mirror.name.removesuffix(".git") + ".spare")


def _keep_as_spare(mirror: Path, worktree_path: Path) -> bool:
    """Move a finished worktree aside for reuse; False when the pool is full or git refuses."""
    spares = _spares_dir(mirror)
    spares.mkdir(parents=True, exist_ok=True)
    if sum(1 for _ in spares.iterdir()) >= SPARE_WORKTREES:
        return False
    try:
        # Detached, it holds no branch: the task's branch stays free for a retry.
        run_git(["checkout", "--quiet", "--detach"], cwd=worktree_path)
        spare = spares / os.urandom(6).hex()
        run_git(["worktree", "move", str(worktree_path), str(spare)], cwd=mirror)
    except GitError:
        return False
    return True


def repair_git_pointer(*, mirror: Path, worktree_path: Path) -> None:
    """Point `worktree_path/.git` back at its registration in `mirror`, whatever an agent
    left there. Optio runs git in worktrees outside the sandbox: a `.git` an agent made
    (a directory with its own config, hooks or fsmonitor) would otherwise run as code."""
    worktrees = mirror / "worktrees"
    pointer = worktree_path / ".git"
    wanted = str(pointer.absolute())
    for entry in sorted(worktrees.iterdir()) if worktrees.is_dir() else []:
        try:
            registered = (entry / "gitdir").read_text().strip()
        except OSError:
            continue
        if registered != wanted:
            continue
        if pointer.is_symlink() or pointer.is_file():
            pointer.unlink()
        elif pointer.exists():
            shutil.rmtree(pointer)
        pointer.write_text(f"gitdir: {entry}\n")
        return


def _reuse_spare(mirror: Path, worktree_path: Path, branch: str, target: str) -> bool:
    """Make a spare the worktree at `worktree_path`, on `branch` at `target`, clean."""
    spares = _spares_dir(mirror)
    if worktree_path.exists():
        return False  # a leftover there is for the usual path to deal with
    for spare in sorted(spares.iterdir()) if spares.is_dir() else []:
        try:
            run_git(["worktree", "move", str(spare), str(worktree_path)], cwd=mirror)
        except GitError:
            # Not a usable worktree of this mirror (half moved, deleted by hand): drop it.
            shutil.rmtree(spare, ignore_errors=True)
            run_git(["worktree", "prune"], cwd=mirror)
            continue
        try:
            repair_git_pointer(mirror=mirror, worktree_path=worktree_path)
            run_git(["checkout", "--quiet", "--force", "-B", branch, target], cwd=worktree_path)
            run_git(["clean", "-ffdxq"], cwd=worktree_path)
        except GitError:
            run_git(["worktree", "remove", "--force", "--force", str(worktree_path)], cwd=mirror)
            return False
        return True
    return False


def remove_worktree(*, mirror: Path, worktree_path: Path) -> None:
    """The task's worktree goes: kept as a spare for the next task when there is room."""
    with _locked(_mirror_lock(mirror)):
        wanted = worktree_path.resolve()
        if any(wt.path.resolve() == wanted for wt in list_worktrees(mirror)):
            repair_git_pointer(mirror=mirror, worktree_path=worktree_path)
            if _keep_as_spare(mirror, worktree_path):
                return
            run_git(["worktree", "remove", "--force", "--force", str(worktree_path)], cwd=mirror)
            return  # `worktree remove` also dropped its registration: nothing to prune
        if (worktree_path / ".git").is_file():
            # Half-registered leftover of a crashed `worktree add`.
            shutil.rmtree(worktree_path, ignore_errors=True)
        run_git(["worktree", "prune"], cwd=mirror)

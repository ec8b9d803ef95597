"""The local sandbox: bubblewrap (`bwrap`) around everything a run executes.

An agent, a `script` prompt and a repository's test command are untrusted code. Each runs
in new user, pid, ipc, uts and cgroup namespaces, as a non-root uid without capabilities,
and sees only:

- its worktree (read-write) and a home of its own (read-write, kept per task so that an
  agent can continue its session),
- `/usr`, `/etc` and the agent CLIs read-only, minus every file of `/etc` that an
  unprivileged user could not read either (shadow, TLS private keys, database configs):
  the uid inside maps to the launching user outside, so owner-only files would otherwise
  be readable to it,
- a private `/tmp`, `/proc` and a minimal `/dev`.

Nothing of Optio's data dir (database, encryption key, other runs, other worktrees,
mirrors) is mounted, and the runner that holds the run's token and the forge credential
is outside the sandbox's pid namespace. The network is shared (agents must reach their
model endpoint): docs/deployment.md says what a deployer can add.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_UID = 1000
SANDBOX_GID = 1000
HOSTNAME = "optio-sandbox"
# Top-level entries that merged-/usr systems make symlinks into /usr.
_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
INSTALL_HINT = (
    "Optio runs agents and scripts inside bubblewrap. Install it (Debian/Ubuntu: "
    "`apt-get install -y bubblewrap`; `make install` does this when run as root) and make "
    "sure unprivileged user namespaces are enabled (sysctl kernel.unprivileged_userns_clone=1 "
    "or user.max_user_namespaces > 0)."
)


# What sandboxed code inherits of the machine: a PATH, a locale and nothing else. The
# launching process's own environment (database URLs, cloud credentials) stays outside.
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "USER": "agent",
    "LOGNAME": "agent",
}
PASSED_THROUGH = ("TZ", "TERM")


def sandbox_env(*, home: Path | str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(BASE_ENV)
    env.update({k: os.environ[k] for k in PASSED_THROUGH if k in os.environ})
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


class SandboxUnavailableError(RuntimeError):
    """bwrap is missing or cannot create namespaces on this machine."""


@dataclass(frozen=True)
class Sandbox:
    """What one sandboxed command may see."""

    worktree: Path
    home: Path | None = None
    # The repository's git dir (the worktree's mirror): read-write for objects, refs and
    # the worktree's index, but its config, hooks and info stay read-only, so nothing
    # the agent does there runs as code when Optio uses git outside the sandbox.
    git_dir: Path | None = None
    # Read-only extras: the agent CLIs' install directory, for one.
    read_only: Sequence[Path] = field(default_factory=tuple)

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` wrapped in bwrap. The environment is passed to bwrap as the process
        environment (inherited by the sandboxed command), never on the command line."""
        args = base_args()
        for path in self.read_only:
            if path.exists():
                args += ["--ro-bind", str(path), str(path)]
        if self.home is not None:
            args += ["--bind", str(self.home), str(self.home)]
        if self.git_dir is not None:
            args += _git_dir_binds(self.git_dir, self.worktree)
        args += ["--bind", str(self.worktree), str(self.worktree), "--chdir", str(self.worktree)]
        return [*args, "--", *argv]


def base_args(*, uid: int = SANDBOX_UID, new_session: bool = True) -> list[str]:
    """bwrap's namespaces and the machine's read-only system directories."""
    return [
        bwrap_path(),
        "--unshare-user",
        "--uid",
        str(uid),
        "--gid",
        str(uid if uid != SANDBOX_UID else SANDBOX_GID),
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        HOSTNAME,
        "--die-with-parent",
        *(["--new-session"] if new_session else []),
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/usr",
        "/usr",
        *_root_links(),
        "--ro-bind",
        "/etc",
        "/etc",
        *_etc_masks(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
    ]


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = False


def mounted_command(
    argv: Sequence[str],
    *,
    mounts: Sequence[Mount],
    workdir: str,
    uid: int = SANDBOX_UID,
    new_session: bool = True,
) -> list[str]:
    """`argv` in a sandbox that sees the given mounts at their targets, in order (later
    ones over earlier ones), like a container's volumes. Without `new_session` the
    command stays in the caller's process group, so a signal to the group reaches it."""
    args = base_args(uid=uid, new_session=new_session)
    for mount in mounts:
        flag = "--ro-bind" if mount.read_only else "--bind"
        args += [flag, str(mount.source), mount.target]
    return [*args, "--chdir", workdir, "--", *argv]


# What git reads as configuration or runs as code: read-only inside the sandbox.
_GIT_PROTECTED = ("config", "hooks", "info", "objects/info", "commondir", "shallow")


def _git_dir_binds(git_dir: Path, worktree: Path) -> list[str]:
    for name in ("hooks", "info", "objects/info"):
        (git_dir / name).mkdir(parents=True, exist_ok=True)  # so that they can be bound
    args = ["--bind", str(git_dir), str(git_dir)]
    for name in _GIT_PROTECTED:
        path = git_dir / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    worktrees = git_dir / "worktrees"
    if worktrees.is_dir():
        # Other tasks' worktree entries are read-only as a whole, those added after this
        # run starts included; and bwrap binds nothing inside them, so one removed while
        # the run starts cannot fail it. The run's own entry (its index, HEAD, logs) is
        # writable, but not what tells git where its repository is.
        args += ["--ro-bind", str(worktrees), str(worktrees)]
        own = _own_worktree_entry(worktree, worktrees)
        if own is not None:
            args += ["--bind", str(own), str(own)]
            for name in ("config.worktree", "commondir", "gitdir"):
                if (own / name).exists():
                    args += ["--ro-bind", str(own / name), str(own / name)]
    return args


def _own_worktree_entry(worktree: Path, worktrees: Path) -> Path | None:
    """The admin entry `<git dir>/worktrees/<name>` the worktree's `.git` file names
    (`<name>` is the worktree's first name: a reused spare keeps its old one)."""
    try:
        pointer = (worktree / ".git").read_text().strip()
    except OSError:
        return None  # not a linked worktree
    named = Path(pointer.removeprefix("gitdir:").strip())
    entry = worktrees / named.name
    if named.resolve().parent != worktrees.resolve() or not entry.is_dir():
        return None
    return entry


def bwrap_path() -> str:
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailableError(f"bwrap was not found on PATH. {INSTALL_HINT}")
    return found


def prepare_shared_args() -> None:
    """Compute what every sandbox's command line shares (the root's links, the masks of
    /etc), once per process: a process that forks runners does it before forking, so
    that each runner inherits it instead of walking /etc again."""
    _root_links()
    _etc_masks()


@functools.cache
def _root_links() -> tuple[str, ...]:
    args: list[str] = []
    for name in _ROOT_LINKS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return tuple(args)


@functools.cache
def _etc_masks() -> tuple[str, ...]:
    """Hide what only a privileged user may read in /etc (computed once per process)."""
    args: list[str] = []
    for root, dirs, files in os.walk("/etc"):
        for name in list(dirs):
            path = os.path.join(root, name)
            if not _world_readable(path):
                args += ["--tmpfs", path]
                dirs.remove(name)  # its content is hidden with it
        for name in files:
            path = os.path.join(root, name)
            if not _world_readable(path):
                args += ["--ro-bind", "/dev/null", path]
    return tuple(args)


def _world_readable(path: str) -> bool:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return True  # gone meanwhile: nothing to hide
    if stat.S_ISLNK(mode):
        return True  # a link shows only what its target does
    needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & needed == needed


@functools.cache
def check_sandbox() -> None:
    """Raise SandboxUnavailableError with what to do when bwrap cannot run here."""
    probe = Sandbox(worktree=Path("/tmp")).command(["/bin/true"])
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        raise SandboxUnavailableError(f"bwrap could not be started: {exc}. {INSTALL_HINT}") from exc
    if proc.returncode != 0:
        detail = proc.stderr.strip() or f"exit {proc.returncode}"
        raise SandboxUnavailableError(
            f"bwrap cannot create a sandbox here: {detail}. {INSTALL_HINT}"
        )

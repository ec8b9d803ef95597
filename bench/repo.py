"""The bare git repository the benchmark's tasks work on, like a forge's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip()}")
    return done.stdout.strip()


def make_bare_repo(root: Path) -> Path:
    """`git init -b main`, one commit, `clone --bare`; returns the bare repository."""
    work = root / "repo-src"
    work.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=work)
    (work / "README.md").write_text("# optio bench\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "initial commit", cwd=work)
    bare = root / "repo.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    return bare


def commit_count(bare: Path, branch: str = "main") -> int:
    return int(git("rev-list", "--count", branch, cwd=bare))


def files_on_branch(bare: Path, branch: str = "main") -> set[str]:
    return set(git("ls-tree", "--name-only", branch, cwd=bare).splitlines())

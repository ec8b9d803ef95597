"""The empty repository a standalone run starts from (it has no repository of its own).

The runner makes it where the spec's file:// `repo_url` points, before fetching from it as
from any origin: on the worker's disk for the local launcher, inside the run's pod for the
kubernetes launcher (a worker's disk is out of a pod's reach). What the agent leaves is
pushed to a branch of it, as a task's work is to its repository.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from integrations.git import identity_args, run_git

IDENTITY = {
    "GIT_AUTHOR_NAME": "Optio",
    "GIT_AUTHOR_EMAIL": "optio@noreply.local",
    "GIT_COMMITTER_NAME": "Optio",
    "GIT_COMMITTER_EMAIL": "optio@noreply.local",
}


def scratch_path(repo_url: str) -> Path:
    parsed = urlparse(repo_url)
    if parsed.scheme != "file" or not parsed.path:
        raise ValueError(f"a scratch repository is a file:// URL, not {repo_url!r}")
    return Path(unquote(parsed.path))


def make_scratch_repo(path: Path) -> None:
    """A bare repository with one empty commit on main: the sandbox's starting point."""
    if (path / "HEAD").exists():
        return
    path.mkdir(parents=True, exist_ok=True)
    run_git(["init", "-q", "--bare", "-b", "main", str(path)], cwd=None)
    tree = run_git(["hash-object", "-w", "-t", "tree", "/dev/null"], cwd=path)
    commit = run_git(
        [*identity_args("Optio", "optio@noreply.local"), "commit-tree", tree, "-m", "sandbox"],
        cwd=path,
        env=IDENTITY,
    )
    run_git(["update-ref", "refs/heads/main", commit], cwd=path)

"""Where a local repository may live: under the allowed roots, never in the data dir.

docs/configuration.md, "Local repositories". Used by the API when a repository is
named and by activities that act on one later (a scheduled blueprint run).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from core.errors import InvalidInputError
from core.settings import Settings

LOCAL_PREFIX = "file://"


def check_local_path(path: Path, settings: Settings) -> None:
    resolved = path.resolve()
    data_dir = settings.data_dir.resolve()
    if any(_within(p, data_dir) for p in _git_locations(resolved)):
        raise _refused("is inside Optio's data directory, which no task may use")
    roots = [root.expanduser().resolve() for root in settings.local_repo_roots]
    if not any(_within(resolved, root) for root in roots):
        allowed = ", ".join(str(r) for r in roots) or "none"
        raise _refused(
            f"is outside the folders local repositories may live in ({allowed}); "
            "an operator can allow more with OPTIO_LOCAL_REPO_ROOTS"
        )


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _git_locations(repo: Path) -> Iterator[Path]:
    """The repository and every place git would read its objects from: a linked
    worktree's git dir, its common dir and object alternates could all point into the
    data dir (a task worktree, a mirror) from a folder that looks innocent."""
    yield repo
    git_dir = repo / ".git"
    if git_dir.is_file():
        text = _read(git_dir).strip()
        if text.startswith("gitdir:"):
            git_dir = (repo / text.removeprefix("gitdir:").strip()).resolve()
            yield git_dir
    elif not git_dir.is_dir():
        git_dir = repo  # bare
    common = git_dir / "commondir"
    if common.is_file():
        git_dir = (git_dir / _read(common).strip()).resolve()
        yield git_dir
    alternates = git_dir / "objects" / "info" / "alternates"
    if alternates.is_file():
        for line in _read(alternates).splitlines():
            if line.strip() and not line.startswith("#"):
                yield (git_dir / "objects" / line.strip()).resolve()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        # Unreadable to us is unreadable to git run as us: nothing it could point at.
        return ""


def _refused(problem: str) -> InvalidInputError:
    return InvalidInputError(
        f"Invalid fields: repoUrl ({problem})",
        details=[{"field": "repoUrl", "message": problem}],
    )

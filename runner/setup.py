"""Setup files (MCP config, skills) written for the agent and taken away before the commit.

The agent must find them in the worktree, but they are Optio's, not the change: after
the agent exits every file is restored to what the repository had (or removed), so
`git add -A` never picks them up. A repository's own JSON config is merged, not hidden.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from integrations.agents.base import SetupFile


def write_no_follow(path: Path, content: str | bytes, mode: int = 0o644) -> None:
    """Write `path` anew without following a link an agent may have put in its place.

    The runner writes into the worktree and the agent's home from outside the sandbox:
    a link planted there by an agent would otherwise let it overwrite any file of ours.
    Callers write only after the agent's sandbox is gone (or before it starts), so the
    check of the parent cannot race with it.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path.is_symlink() or path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


class SetupFiles:
    def __init__(self) -> None:
        self._originals: dict[Path, bytes | None] = {}
        self._created_dirs: list[Path] = []
        self._roots: dict[Path, Path] = {}

    def write(self, files: list[SetupFile], *, worktree: Path, home: Path) -> None:
        for file in files:
            root = worktree if file.base == "worktree" else home
            path = (root / file.path).resolve()
            if not path.is_relative_to(root.resolve()):
                raise ValueError(f"setup file {file.path!r} escapes its directory")
            content = file.content
            if file.base == "worktree":
                original = path.read_bytes() if path.is_file() else None
                self._originals.setdefault(path, original)
                if original is not None and path.suffix == ".json":
                    content = _merged_json(original, content)
            self._make_parents(path.parent, root.resolve())
            self._roots[path] = root.resolve()
            write_no_follow(path, content, file.mode)
            os.chmod(path, file.mode)

    def _make_parents(self, directory: Path, root: Path) -> None:
        missing = []
        while not directory.exists() and directory != root:
            missing.append(directory)
            directory = directory.parent
        for created in reversed(missing):
            created.mkdir()
            self._created_dirs.append(created)

    def restore(self) -> None:
        for path, original in self._originals.items():
            # The agent may have swapped a parent directory for a link out of its tree.
            if not path.parent.resolve().is_relative_to(self._roots[path]):
                continue
            if original is None:
                path.unlink(missing_ok=True)
            else:
                write_no_follow(path, original)
        for directory in reversed(self._created_dirs):
            with contextlib.suppress(OSError):  # not empty: the agent put files there too
                directory.rmdir()
        self._originals.clear()
        self._created_dirs.clear()


def _merged_json(original: bytes, ours: str) -> str:
    try:
        theirs = json.loads(original)
    except ValueError:
        return ours
    if not isinstance(theirs, dict):
        return ours
    return json.dumps(_merge(theirs, json.loads(ours)), indent=2) + "\n"


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged

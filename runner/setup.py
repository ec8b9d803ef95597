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


class SetupFiles:
    def __init__(self) -> None:
        self._originals: dict[Path, bytes | None] = {}
        self._created_dirs: list[Path] = []

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
            path.write_text(content, encoding="utf-8")
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
            if original is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(original)
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

"""Branch names from requests and forges: the rules of `git check-ref-format --branch`.

A branch name ends up on git command lines and in forge URLs, so one that git itself
would refuse (or that reads like an option, `--upload-pack=...`) is refused where it
enters, with a message a person can act on. Pure, so schemas and git callers share it.
"""

from __future__ import annotations

import re

MAX_BRANCH_LENGTH = 255
# Control characters, space and the characters git reserves for revision syntax.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def branch_name_problem(name: str) -> str | None:
    """Why `name` is not a valid branch name, or None when `git check-ref-format
    --branch` would accept it (for names that are not `@{-N}` shorthands)."""
    if not name:
        return "a branch name cannot be empty"
    if len(name) > MAX_BRANCH_LENGTH:
        return f"a branch name is at most {MAX_BRANCH_LENGTH} characters"
    if name.startswith("-"):
        return "a branch name cannot start with '-'"
    if name == "HEAD" or name == "@":
        return f"'{name}' is not a branch name"
    if _FORBIDDEN.search(name):
        return "a branch name cannot contain spaces, control characters or ~ ^ : ? * [ \\"
    if ".." in name or "@{" in name:
        return "a branch name cannot contain '..' or '@{'"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "a branch name cannot start or end with '/' or contain '//'"
    if name.endswith("."):
        return "a branch name cannot end with '.'"
    for part in name.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return "no part of a branch name can start with '.' or end with '.lock'"
    return None


def check_branch_name(name: str) -> str:
    """`name`, or ValueError saying what is wrong with it (pydantic turns it into a 400)."""
    problem = branch_name_problem(name)
    if problem is not None:
        raise ValueError(f"{problem}: {name!r}")
    return name


_PLAIN_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,199}")


def is_plain_word(value: str) -> bool:
    """An identifier safe as a command-line argument: never an option, never two words.

    For values an agent reports that go back on its next command line (its session id).
    """
    return _PLAIN_WORD.fullmatch(value) is not None

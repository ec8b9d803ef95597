"""The adapter interface between the runner and one kind of coding agent.

An adapter knows how to start its agent (command line, environment, setup files), how
to turn each line the agent prints into log entries, and how to summarise the run at
the end. It holds no state: the runner owns the process, the entries and the result
file, so everything `result` needs travels in the entries' metadata.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from schemas.runner import LogType, RunSpec

Stream = Literal["stdout", "stderr"]

# CSI sequences (colours, cursor moves), OSC sequences (titles, hyperlinks) and
# two-character escapes: agents print them for terminals, the UI shows plain text.
_ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


class UnsupportedAgentError(Exception):
    """The agent type is unknown, or known but without an adapter yet."""


@dataclass(frozen=True)
class ParsedEntry:
    """One log entry derived from one output line (a line may yield several or none)."""

    log_type: LogType
    content: str
    stream: Stream = "stdout"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SetupFile:
    """A file the runner writes before the agent starts and takes away after it exits.

    `base` "worktree" files (MCP config, skills) are restored to what the repository had,
    so they are never committed; "home" files live in the agent's own HOME.
    """

    path: str  # relative to the base directory
    content: str
    base: Literal["worktree", "home"] = "worktree"
    mode: int = 0o644


@dataclass(frozen=True)
class AgentOutcome:
    """The adapter's part of a RunResult; the runner adds exit code and git facts."""

    success: bool
    summary: str = ""
    error: str | None = None
    cost_usd: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None
    session_id: str | None = None


class AgentAdapter(Protocol):
    agent_type: str
    # Name of the file under <worktree>/.optio/ the runner writes the prompt to.
    prompt_filename: str

    def build_command(self, spec: RunSpec, *, prompt_file: Path) -> list[str]: ...

    def env(self, spec: RunSpec) -> dict[str, str]: ...

    def setup_files(self, spec: RunSpec) -> list[SetupFile]: ...

    def before_run(self, spec: RunSpec, *, home: Path) -> list[ParsedEntry]:
        """Entries that open the run's log (e.g. what a resumed session already used)."""
        ...

    def parse_line(self, line: str, stream: Stream) -> list[ParsedEntry]: ...

    def result(self, exit_code: int, entries: Sequence[ParsedEntry]) -> AgentOutcome: ...

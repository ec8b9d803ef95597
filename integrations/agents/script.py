"""The `script` agent: the prompt is a bash script, run as is in the worktree.

It exists to exercise the whole pipeline (worktree, logs, commit, push) without an
LLM, in tests and in demos.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from integrations.agents.base import AgentOutcome, ParsedEntry, SetupFile, Stream, strip_ansi
from schemas.runner import RunSpec

MAX_SUMMARY_CHARS = 2000


class ScriptAdapter:
    agent_type = "script"
    prompt_filename = "agent-script.sh"

    def build_command(self, spec: RunSpec, *, prompt_file: Path) -> list[str]:
        return ["bash", str(prompt_file)]

    def env(self, spec: RunSpec) -> dict[str, str]:
        return {"OPTIO_RUN_ID": spec.run_id, "OPTIO_TASK_ID": spec.task_id}

    def setup_files(self, spec: RunSpec) -> list[SetupFile]:
        return []

    def before_run(self, spec: RunSpec, *, home: Path) -> list[ParsedEntry]:
        return []

    def parse_line(self, line: str, stream: Stream) -> list[ParsedEntry]:
        text = strip_ansi(line).rstrip("\r\n")
        if not text.strip():
            return []
        return [ParsedEntry(log_type="text", content=text, stream=stream)]

    def result(self, exit_code: int, entries: Sequence[ParsedEntry]) -> AgentOutcome:
        last = next(
            (e.content for e in reversed(entries) if e.stream == "stdout" and e.content.strip()),
            None,
        )
        failure = f"Script exited with code {exit_code}"
        summary = last[:MAX_SUMMARY_CHARS] if last is not None else failure
        if exit_code == 0:
            return AgentOutcome(success=True, summary=summary)
        return AgentOutcome(success=False, summary=summary, error=failure)

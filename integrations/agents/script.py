"""The `script` agent: the prompt is a bash script, run as is in the worktree.

It exists to exercise the whole pipeline (worktree, logs, commit, push) without an
LLM, in tests and in demos. A line `optio-usage {"costUsd": "0.05", "inputTokens": 10,
"outputTokens": 2, "model": "m"}` reports usage the way Claude Code's result line does
(cumulative over the run), so costs and budgets can be exercised too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from integrations.agents.base import AgentOutcome, ParsedEntry, SetupFile, Stream, strip_ansi
from integrations.agents.common import last_meta
from schemas.runner import RunSpec

MAX_SUMMARY_CHARS = 2000
USAGE_PREFIX = "optio-usage "


def _usage(text: str) -> dict[str, Any] | None:
    if not text.startswith(USAGE_PREFIX):
        return None
    try:
        reported = json.loads(text.removeprefix(USAGE_PREFIX))
    except ValueError:
        return None
    if not isinstance(reported, dict):
        return None
    cost = reported.get("costUsd")
    return {
        "costUsd": str(cost) if cost is not None else None,
        "inputTokens": int(reported.get("inputTokens") or 0),
        "outputTokens": int(reported.get("outputTokens") or 0),
        "model": str(reported["model"]) if reported.get("model") else None,
    }


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
        usage = _usage(text) if stream == "stdout" else None
        if usage is not None:
            summary = f"usage · ${usage['costUsd'] or 0}"
            return [ParsedEntry("usage", summary, stream, {"outcome": usage})]
        return [ParsedEntry(log_type="text", content=text, stream=stream)]

    def result(self, exit_code: int, entries: Sequence[ParsedEntry]) -> AgentOutcome:
        last = next(
            (
                e.content
                for e in reversed(entries)
                if e.stream == "stdout" and e.log_type == "text" and e.content.strip()
            ),
            None,
        )
        failure = f"Script exited with code {exit_code}"
        summary = last[:MAX_SUMMARY_CHARS] if last is not None else failure
        usage: dict[str, Any] = last_meta(entries, "outcome") or {}
        reported = {
            "cost_usd": usage.get("costUsd"),
            "input_tokens": usage.get("inputTokens"),
            "output_tokens": usage.get("outputTokens"),
            "model": usage.get("model"),
        }
        if exit_code == 0:
            return AgentOutcome(success=True, summary=summary, **reported)
        return AgentOutcome(success=False, summary=summary, error=failure, **reported)

"""Contracts between the control plane, the launchers and the in-sandbox runner.

These travel as JSON files in a run's directory (spec in, progress and result out)
and as HTTP bodies to the ingest endpoint, never through Temporal history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

LogType = Literal["text", "tool_use", "tool_result", "thinking", "system", "error", "info"]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class RunSpec(CamelModel):
    """Everything the runner needs to carry out one agent run."""

    run_id: str
    task_id: str
    agent_type: str
    prompt: str
    title: str = ""
    repo_url: str
    base_branch: str = "main"
    branch: str  # optio/task-<taskId>
    # Start from the existing remote task branch (resume/retry with a PR) instead of the base.
    from_existing_branch: bool = False
    worktree_path: str
    mirror_cache_dir: str
    ingest_url: str  # full URL of POST /api/internal/runs/<runId>/events
    run_token: str
    env: dict[str, str] = Field(default_factory=dict)
    max_turns: int = 250
    commit_author_name: str = "Optio Agent"
    commit_author_email: str = "optio-agent@noreply.local"


class LogEvent(CamelModel):
    seq: int
    timestamp: datetime
    stream: Literal["stdout", "stderr", "system"] = "stdout"
    log_type: LogType = "text"
    content: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class LogBatch(CamelModel):
    events: list[LogEvent]


class RunProgress(CamelModel):
    """Written by the runner every few seconds to progress.json (atomic replace)."""

    phase: Literal["preparing", "running_agent", "pushing", "done"]
    agent_pid: int | None = None
    last_output_at: datetime
    events_emitted: int = 0
    events_delivered: int = 0


class RunResult(CamelModel):
    """Written once by the runner to result.json (atomic replace) when the run ends."""

    success: bool
    exit_code: int | None = None
    summary: str = ""
    error: str | None = None
    head_sha: str | None = None
    pushed: bool = False
    committed_changes: bool = False
    session_id: str | None = None
    cost_usd: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None

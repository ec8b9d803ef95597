"""Contracts between the control plane, the launchers and the in-sandbox runner.

These travel as JSON files in a run's directory (spec in, progress and result out)
and as HTTP bodies to the ingest endpoint, never through Temporal history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer
from pydantic.alias_generators import to_camel

from schemas.agents import McpServerSpec, SkillSpec

LogType = Literal["text", "tool_use", "tool_result", "thinking", "system", "error", "info", "usage"]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class RunSpec(CamelModel):
    """Everything the runner needs to carry out one agent run."""

    run_id: str
    task_id: str
    # Labels the run's pod on the kubernetes launcher; nothing else reads it.
    workspace_id: str = ""
    agent_type: str
    prompt: str
    title: str = ""
    repo_url: str
    base_branch: str = "main"
    branch: str  # optio/task-<taskId>
    # Start from the existing remote task branch (resume/retry with a PR) instead of the base.
    from_existing_branch: bool = False
    # False for a review: the agent reads the PR's head; nothing is committed or pushed.
    publish: bool = True
    # Silence of the agent after which the run fails as stalled. Enforced by a pod's
    # runner (runner/pod.py), which alone sees the agent's output there; on the local
    # launcher the activity watches the run's progress file instead.
    stall_timeout_seconds: float | None = None
    # A standalone run, with no repository: `repo_url` is a file:// path where the runner
    # makes an empty one first (integrations/scratch_repo.py).
    scratch: bool = False
    worktree_path: str
    mirror_cache_dir: str
    ingest_url: str  # full URL of POST /api/internal/runs/<runId>/events
    # Authenticates the runner to the ingest endpoint. Like the credentials below it never
    # reaches a file or the sandbox: see SECRET_FIELDS.
    run_token: SecretStr = SecretStr("")
    env: dict[str, str] = Field(default_factory=dict)
    max_turns: int = 250
    # Real agents: `prompt` is the rendered system prompt and `task_file` the content of
    # .optio/task.md; None keeps the script agent's "# title + prompt" task file.
    task_file: str | None = None
    model: str | None = None
    effort: str | None = None
    # The agent's session to continue (Claude `--resume`, Codex `exec resume`).
    resume_session_id: str | None = None
    # HOME of the agent process; sessions live there, so resumes need the same one.
    agent_home: str | None = None
    # Directories put first on the agent's PATH (where the agent CLIs are installed).
    extra_path: list[str] = Field(default_factory=list)
    # Base URL of the model API when it is not the vendor's (a proxy, a gateway, tests).
    model_base_url: str | None = None
    # Retries of a failed model request inside the CLI; None leaves the CLI's default.
    agent_max_retries: int | None = None
    # USD per million tokens [input, output, cached input] for agents priced by Optio.
    model_prices: dict[str, list[float]] = Field(default_factory=dict)
    mcp_servers: list[McpServerSpec] = Field(default_factory=list)
    skills: list[SkillSpec] = Field(default_factory=list)
    # Credentials for the agent's environment only, and values of the `${{NAME}}`
    # references in MCP config. SecretStr keeps them out of reprs and logs; the launcher
    # hands them to the runner through a pipe (public_json / secrets_json), never a file.
    secret_env: dict[str, SecretStr] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    # Every other secret value of the workspace and every credential Optio holds: the
    # runner masks them in all it reports, whatever the agent prints. Never on disk.
    mask_values: list[SecretStr] = Field(default_factory=list)
    commit_author_name: str = "Optio Agent"
    commit_author_email: str = "optio-agent@noreply.local"

    @field_serializer("secret_env", "secrets", when_used="json")
    def _reveal(self, value: dict[str, SecretStr]) -> dict[str, str]:
        # Only secrets_json() serialises these; Python dumps stay masked.
        return {k: v.get_secret_value() for k, v in value.items()}

    @field_serializer("mask_values", when_used="json")
    def _reveal_masked(self, value: list[SecretStr]) -> list[str]:
        return [v.get_secret_value() for v in value]

    @field_serializer("run_token", when_used="json")
    def _reveal_token(self, value: SecretStr) -> str:
        return value.get_secret_value()

    def public_json(self) -> str:
        """The spec without its secrets: what may be written to the run directory."""
        return self.model_dump_json(by_alias=True, exclude=set(SECRET_FIELDS))

    def secrets_json(self) -> str:
        """Only the secrets, for the pipe from the launcher to the runner."""
        return self.model_dump_json(by_alias=True, include=set(SECRET_FIELDS))

    @classmethod
    def joined(cls, public: str | bytes, secrets: str | bytes | None) -> RunSpec:
        """The whole spec again, in the runner's memory."""
        data = json.loads(public)
        if secrets:
            data.update(json.loads(secrets))
        return cls.model_validate(data)


# Fields that never touch a disk: the run token and every credential of the run.
SECRET_FIELDS = ("run_token", "secret_env", "secrets", "mask_values")


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
    # False when the run ended before the agent started (bad agent type, git failure).
    prepared: bool = True
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
    # The agent was stopped for printing nothing for the spec's stall_timeout_seconds.
    stalled: bool = False


RunState = Literal["running", "finished", "lost"]


@dataclass(frozen=True)
class RunStatus:
    """Where a launched run stands, as any launcher reports it."""

    state: RunState
    result: RunResult | None = None
    progress: RunProgress | None = None


class InboxReport(CamelModel):
    """A runner's report on the messages for its agent, sent when it asks for new ones."""

    delivered: list[str] = Field(default_factory=list, max_length=1000)  # written to stdin
    acked: list[str] = Field(default_factory=list, max_length=1000)  # echoed by the agent


class InboxMessage(CamelModel):
    id: str
    content: str
    mode: Literal["soft", "interrupt"] = "soft"


class InboxMessages(CamelModel):
    messages: list[InboxMessage]

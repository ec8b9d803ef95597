"""HTTP shapes of repo tasks (inventory §3.1)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from schemas.common import ApiModel, ApiOut, Metadata
from schemas.money import Usd
from schemas.refs import check_branch_name

AGENT_TYPES = ("claude-code", "codex", "copilot", "opencode", "gemini", "openclaw", "script")
AgentType = Literal["claude-code", "codex", "copilot", "opencode", "gemini", "openclaw", "script"]
BRANCH_PATTERN = r"^[a-zA-Z0-9._/-]+$"
# The pattern keeps the reference's character set; check_branch_name adds git's own rules
# (no leading '-', no '..', no '.lock' part...), since branch names reach git commands.
Branch = Annotated[
    str, Field(pattern=BRANCH_PATTERN, max_length=255), AfterValidator(check_branch_name)
]
# A model name as the CLIs take it: "gpt-5.5", "anthropic/claude-sonnet-4-5", "opus[1m]".
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@\[\]-]{0,99}$"
MODEL_NAME = re.compile(MODEL_PATTERN)
ModelName = Annotated[str, Field(pattern=MODEL_PATTERN)]


def normalise_agent_type(value: object) -> object:
    # The reference accepts "claude" as shorthand in examples and clients.
    return "claude-code" if value == "claude" else value


TaskKindName = Literal["repo-task", "repo-blueprint", "standalone"]


class TaskKind(ApiModel):
    """The `type` discriminator of POST /api/tasks; the rest is checked per kind."""

    type: TaskKindName = "repo-task"


class TaskCreate(ApiModel):
    type: Literal["repo-task"] = "repo-task"
    title: str = Field(min_length=1, max_length=500)
    prompt: str = Field(min_length=1, max_length=100_000)
    repo_url: str = Field(min_length=1, max_length=2000)
    repo_branch: Branch | None = None
    agent_type: AgentType | None = None
    priority: int = Field(default=100, ge=1, le=1000)
    max_retries: int = Field(default=3, ge=0, le=10)
    # The agent's model for this task (kept as metadata.model); default OPTIO_AGENT_MODELS.
    model: ModelName | None = None
    metadata: Metadata | None = None
    depends_on: list[str] | None = Field(default=None, max_length=100)
    # The task's budget over all its runs; the repo's maxCostUsd when unset.
    max_cost_usd: Usd | None = None

    _agent = field_validator("agent_type", mode="before")(normalise_agent_type)


class TaskUpdate(ApiModel):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    prompt: str | None = Field(default=None, min_length=1, max_length=100_000)
    priority: int | None = Field(default=None, ge=1, le=1000)
    max_retries: int | None = Field(default=None, ge=0, le=10)
    metadata: Metadata | None = None
    max_cost_usd: Usd | None = None


class TaskPublic(ApiOut):
    id: str
    type: Literal["repo-task"] = "repo-task"
    workspace_id: str
    title: str
    prompt: str
    repo_url: str
    repo_branch: str
    state: str
    agent_type: str
    task_type: str
    session_id: str | None
    pr_url: str | None
    pr_number: int | None
    pr_state: str | None
    pr_checks_status: str | None
    pr_review_status: str | None
    result_summary: str | None
    cost_usd: str | None
    input_tokens: int | None
    output_tokens: int | None
    model_used: str | None
    max_cost_usd: str | None = None
    error_message: str | None
    metadata: dict[str, Any] | None = Field(validation_alias="metadata_")
    retry_count: int
    max_retries: int
    priority: int
    parent_task_id: str | None = None
    subtask_order: int = 0
    blocks_parent: bool = False
    created_by: str | None
    last_activity_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ResumeBody(ApiModel):
    prompt: str | None = Field(default=None, min_length=1, max_length=100_000)


class TaskEventPublic(ApiOut):
    id: str
    task_id: str
    from_state: str | None
    to_state: str
    trigger: str
    message: str | None
    user_id: str | None
    created_at: datetime


class TaskLogPublic(ApiOut):
    id: int
    task_id: str
    stream: str
    content: str
    log_type: str
    metadata: dict[str, Any] | None = Field(validation_alias="metadata_")
    agent_run_id: str | None
    timestamp: datetime


class MergeBody(ApiModel):
    pr_url: str = Field(min_length=1)
    merge_method: Literal["merge", "squash", "rebase"] = "squash"


class SubtaskCreate(ApiModel):
    title: str = Field(min_length=1, max_length=500)
    prompt: str = Field(min_length=1, max_length=100_000)
    task_type: Literal["child", "step", "review"] = "child"
    blocks_parent: bool = False
    agent_type: AgentType | None = None
    priority: int | None = Field(default=None, ge=1, le=1000)
    auto_queue: bool = True

    _agent = field_validator("agent_type", mode="before")(normalise_agent_type)


class DependenciesAdd(ApiModel):
    depends_on_ids: list[str] = Field(min_length=1, max_length=100)


class CommentBody(ApiModel):
    content: str = Field(min_length=1, max_length=10_000)


class ReorderBody(ApiModel):
    task_ids: list[str] = Field(min_length=1, max_length=1000)


class MessageBody(ApiModel):
    content: str = Field(min_length=1, max_length=8000)
    mode: Literal["soft", "interrupt"] = "soft"


DeliveryMode = Literal["live", "next_run", "resume"]


class MessageDelivery(ApiOut):
    """How a message reaches the agent: `live` into the running agent's input (Claude
    Code), `next_run` in the prompt of the task's next run (agents without mid-run
    input), `resume` by resuming a waiting task with it. `deliveredAt` is set once it
    has reached the agent; `task:message_delivered` says when it does later."""

    mode: DeliveryMode
    delivered_at: str | None = None


class TaskMessageOut(ApiOut):
    id: str
    task_id: str
    user_id: str
    content: str
    mode: str
    workspace_id: str
    created_at: str
    delivered_at: str | None = None
    acked_at: str | None = None
    delivery_error: str | None = None


class MessageAccepted(ApiOut):
    message: TaskMessageOut
    delivery: MessageDelivery


class MessageList(ApiOut):
    messages: list[TaskMessageOut]

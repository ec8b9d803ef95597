"""HTTP shapes of connected repositories (inventory §3.10, the lifecycle's settings)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from schemas.common import ApiModel, ApiOut
from schemas.money import Usd
from schemas.tasks import AgentType, Branch, ModelName, normalise_agent_type


class RepoSettings(ApiModel):
    default_branch: Branch | None = None
    default_agent_type: AgentType | None = None
    test_command: str | None = Field(default=None, max_length=4000)
    auto_merge: bool | None = None
    cautious_mode: bool | None = None
    auto_resume: bool | None = None
    max_auto_resumes: int | None = Field(default=None, ge=1, le=100)
    max_concurrent_tasks: int | None = Field(default=None, ge=1, le=50)
    stall_threshold_ms: int | None = Field(default=None, ge=1000, le=86_400_000)
    max_turns_coding: int | None = Field(default=None, ge=1, le=10000)
    # Remote forges (docs/forges.md).
    require_approval: bool | None = None
    review_enabled: bool | None = None
    review_trigger: Literal["on_pr", "on_ci_pass"] | None = None
    review_prompt_template: str | None = Field(default=None, max_length=20000)
    # GitHub Enterprise / self-hosted GitLab API root; derived from the repo URL when unset.
    forge_api_url: str | None = Field(default=None, max_length=2000)
    # Budget of each task of the repo (docs/costs.md).
    max_cost_usd: Usd | None = None
    # Task events posted to the repo's Slack webhook (docs/notifications.md).
    slack_notify_on: (
        list[Literal["task.completed", "task.failed", "task.needs_attention", "task.pr_opened"]]
        | None
    ) = None

    # The model each agent runs for this repository's tasks (docs/agents.md).
    claude_model: ModelName | None = None
    codex_model: ModelName | None = None
    copilot_model: ModelName | None = None
    opencode_model: ModelName | None = None
    gemini_model: ModelName | None = None

    _agent = field_validator("default_agent_type", mode="before")(normalise_agent_type)


class RepoCreate(RepoSettings):
    repo_url: str = Field(min_length=1, max_length=2000)
    git_platform: Literal["github", "gitlab"] | None = None
    full_name: str | None = Field(default=None, max_length=300)
    is_private: bool | None = None


class RepoUpdate(RepoSettings):
    pass


class RepoPublic(ApiOut):
    id: str
    workspace_id: str
    repo_url: str
    full_name: str
    git_platform: str
    is_private: bool
    default_branch: str
    default_agent_type: str
    test_command: str | None
    auto_merge: bool
    cautious_mode: bool
    auto_resume: bool
    max_auto_resumes: int | None
    max_concurrent_tasks: int
    stall_threshold_ms: int | None
    max_turns_coding: int | None
    require_approval: bool
    review_enabled: bool
    review_trigger: str | None
    review_prompt_template: str | None
    forge_api_url: str | None
    max_cost_usd: str | None = None
    slack_notify_on: list[str] | None = None
    claude_model: str | None = None
    codex_model: str | None = None
    copilot_model: str | None = None
    opencode_model: str | None = None
    gemini_model: str | None = None
    created_at: datetime
    updated_at: datetime


class RepoEnvelope(ApiOut):
    repo: RepoPublic


class ReposPublic(ApiOut):
    repos: list[RepoPublic]

"""HTTP shapes of blueprints, standalone tasks, their runs and triggers (inventory §3.2-3.5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from schemas.common import ApiModel, ApiOut, Metadata
from schemas.money import Usd
from schemas.tasks import AgentType, Branch, normalise_agent_type

Money = str
MONEY_PATTERN = r"^\d{1,7}(\.\d{1,6})?$"
TriggerType = Literal["manual", "schedule", "webhook", "ticket"]


class BlueprintFields(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    title: str | None = Field(default=None, min_length=1, max_length=500)
    prompt: str | None = Field(default=None, min_length=1, max_length=100_000)
    prompt_template_id: str | None = Field(default=None, max_length=36)
    repo_branch: Branch | None = None
    agent_type: AgentType | None = None
    max_retries: int | None = Field(default=None, ge=0, le=10)
    priority: int | None = Field(default=None, ge=1, le=1000)
    enabled: bool | None = None
    # Budget of each run (the task it creates), docs/costs.md.
    max_cost_usd: Usd | None = None

    _agent = field_validator("agent_type", mode="before")(normalise_agent_type)


class BlueprintCreate(BlueprintFields):
    type: Literal["repo-blueprint"] = "repo-blueprint"
    repo_url: str = Field(min_length=1, max_length=2000)
    metadata: Metadata | None = None  # accepted for symmetry with repo tasks; unused

    @model_validator(mode="after")
    def _needs(self) -> BlueprintCreate:
        if not (self.name or self.title):
            raise ValueError("a blueprint needs a name or a title")
        if not (self.prompt or self.prompt_template_id):
            raise ValueError("a blueprint needs a prompt or a promptTemplateId")
        return self


class BlueprintUpdate(BlueprintFields):
    repo_url: str | None = Field(default=None, min_length=1, max_length=2000)


class BlueprintPublic(ApiOut):
    id: str
    type: Literal["repo-blueprint"] = "repo-blueprint"
    workspace_id: str
    name: str
    description: str | None
    title: str
    prompt: str
    prompt_template_id: str | None
    repo_url: str
    repo_branch: str | None
    agent_type: str | None
    max_retries: int
    priority: int
    enabled: bool
    max_cost_usd: str | None = None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class StandaloneFields(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    # `prompt` on /api/tasks, `promptTemplate` on the legacy /api/jobs.
    prompt_template: str | None = Field(
        default=None,
        min_length=1,
        max_length=100_000,
        validation_alias=AliasChoices("prompt", "promptTemplate", "prompt_template"),
    )
    agent_type: AgentType | None = Field(
        default=None, validation_alias=AliasChoices("agentType", "agentRuntime", "agent_type")
    )
    model: str | None = Field(default=None, max_length=100)
    max_turns: int | None = Field(default=None, gt=0, le=10_000)
    budget_usd: Money | None = Field(default=None, pattern=MONEY_PATTERN)
    max_concurrent: int | None = Field(default=None, gt=0, le=100)
    max_retries: int | None = Field(default=None, ge=0, le=10)
    warm_pool_size: int | None = Field(default=None, ge=0)
    max_pod_instances: int | None = Field(default=None, ge=1, le=20)
    max_agents_per_pod: int | None = Field(default=None, ge=1, le=50)
    enabled: bool | None = None
    environment_spec: dict[str, Any] | None = None
    params_schema: dict[str, Any] | None = None

    _agent = field_validator("agent_type", mode="before")(normalise_agent_type)

    @field_validator("budget_usd", mode="before")
    @classmethod
    def _money(cls, value: object) -> object:
        # Clients send numbers too; the API stores and returns decimal strings.
        return (
            str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        )


class StandaloneCreate(StandaloneFields):
    type: Literal["standalone"] = "standalone"

    @model_validator(mode="after")
    def _needs(self) -> StandaloneCreate:
        if not self.name:
            raise ValueError("a standalone task needs a name")
        if not self.prompt_template:
            raise ValueError("a standalone task needs a prompt")
        return self


class StandaloneUpdate(StandaloneFields):
    pass


class StandalonePublic(ApiOut):
    id: str
    type: Literal["standalone"] = "standalone"
    workspace_id: str
    name: str
    description: str | None
    prompt: str = Field(validation_alias="prompt_template")
    prompt_template: str
    agent_type: str = Field(validation_alias="agent_runtime")
    agent_runtime: str
    model: str | None
    max_turns: int | None
    budget_usd: str | None
    max_concurrent: int
    max_retries: int
    warm_pool_size: int
    max_pod_instances: int
    max_agents_per_pod: int
    enabled: bool
    environment_spec: dict[str, Any] | None
    params_schema: dict[str, Any] | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class RunCreate(ApiModel):
    params: dict[str, Any] | None = None
    trigger_id: str | None = None


class StandaloneRunPublic(ApiOut):
    id: str
    workflow_id: str
    trigger_id: str | None
    state: str
    params: dict[str, Any] | None
    output: dict[str, Any] | None
    cost_usd: str | None
    input_tokens: int | None
    output_tokens: int | None
    model_used: str | None
    error_message: str | None
    session_id: str | None
    retry_count: int
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime


class RunLogPublic(ApiOut):
    id: int
    workflow_run_id: str
    attempt: int
    stream: str
    content: str
    log_type: str
    metadata: dict[str, Any] | None = Field(validation_alias="metadata_")
    timestamp: datetime


class TriggerCreate(ApiModel):
    type: TriggerType
    config: dict[str, Any] = Field(default_factory=dict)
    param_mapping: dict[str, Any] | None = None
    enabled: bool = True


class TriggerUpdate(ApiModel):
    config: dict[str, Any] | None = None
    param_mapping: dict[str, Any] | None = None
    enabled: bool | None = None


class TriggerPublic(ApiOut):
    id: str
    target_type: str
    target_id: str
    type: str
    config: dict[str, Any]
    param_mapping: dict[str, Any] | None
    enabled: bool
    last_fired_at: datetime | None
    next_fire_at: datetime | None
    created_at: datetime
    updated_at: datetime

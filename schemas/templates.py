"""HTTP shapes of prompt templates and task templates (inventory §3.14)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from schemas.common import ApiModel, ApiOut
from schemas.tasks import AgentType, Branch, normalise_agent_type

TemplateKind = Literal["prompt", "review", "job", "task"]


class PromptTemplateCreate(ApiModel):
    """Named (`name` given) or the reference's default form: workspace default or repo override."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    template: str = Field(min_length=1, max_length=100_000)
    kind: TemplateKind = "prompt"
    description: str | None = Field(default=None, max_length=5000)
    params_schema: dict[str, Any] | None = None
    default_agent_type: AgentType | None = None
    is_default: bool | None = None
    repo_url: str | None = Field(default=None, max_length=2000)
    auto_merge: bool | None = None
    is_review: bool | None = None

    _agent = field_validator("default_agent_type", mode="before")(normalise_agent_type)


class PromptTemplateUpdate(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    template: str | None = Field(default=None, min_length=1, max_length=100_000)
    kind: TemplateKind | None = None
    description: str | None = Field(default=None, max_length=5000)
    params_schema: dict[str, Any] | None = None
    default_agent_type: AgentType | None = None
    auto_merge: bool | None = None

    _agent = field_validator("default_agent_type", mode="before")(normalise_agent_type)


class PromptTemplatePublic(ApiOut):
    id: str
    workspace_id: str
    name: str
    template: str
    kind: str
    description: str | None
    params_schema: dict[str, Any] | None
    default_agent_type: str | None
    is_default: bool
    repo_url: str | None
    auto_merge: bool
    created_at: datetime
    updated_at: datetime


class PreviewBody(ApiModel):
    params: dict[str, Any] = Field(default_factory=dict)


class TaskTemplateFields(ApiModel):
    description: str | None = Field(default=None, max_length=5000)
    title: str | None = Field(default=None, max_length=500)
    repo_url: str | None = Field(default=None, max_length=2000)
    repo_branch: Branch | None = None
    agent_type: AgentType | None = None
    priority: int | None = Field(default=None, ge=1, le=1000)
    max_retries: int | None = Field(default=None, ge=0, le=10)
    params_schema: dict[str, Any] | None = None

    _agent = field_validator("agent_type", mode="before")(normalise_agent_type)


class TaskTemplateCreate(TaskTemplateFields):
    name: str = Field(min_length=1, max_length=200)
    prompt: str = Field(min_length=1, max_length=100_000)


class TaskTemplateUpdate(TaskTemplateFields):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    prompt: str | None = Field(default=None, min_length=1, max_length=100_000)


class TaskTemplatePublic(ApiOut):
    id: str
    workspace_id: str
    name: str
    description: str | None
    title: str | None
    prompt: str
    repo_url: str | None
    repo_branch: str | None
    agent_type: str | None
    priority: int | None
    max_retries: int | None
    params_schema: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class DefaultTemplatePublic(ApiOut):
    """A built-in template's text."""

    template: str


class EffectivePromptPublic(ApiOut):
    """The template a task of this repository (or the workspace) would be given."""

    template: str
    source: Literal["repo", "workspace", "builtin"]
    template_id: str | None
    auto_merge: bool
    cautious_mode: bool


class PromptTemplateSaved(ApiOut):
    """POST /api/prompt-templates: `ok` only when it saved a default (the reference's form),
    not when it created a named template (as POST /api/prompt-templates/named does)."""

    ok: bool | None = None
    template: PromptTemplatePublic


class PreviewPublic(ApiOut):
    rendered: str

"""Ticket providers, issues and ticket sync: API bodies and workflow payloads (§3.18)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, SecretStr

from schemas.common import ApiModel, ApiOut
from schemas.tasks import AgentType

Source = Literal["github", "gitlab", "jira", "linear", "notion"]
# Labels and keys reach a JQL query or a URL: only characters that cannot escape them.
LABEL = r"^[A-Za-z0-9 ._:/+-]{1,100}$"
PROJECT_KEY = r"^[A-Z][A-Z0-9_]{0,49}$"
NAME = r"^[A-Za-z0-9._-]{1,100}$"
PATH = r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)+$"
ID = r"^[A-Za-z0-9-]{1,100}$"

# The fields of each source that are credentials: stored encrypted, never returned.
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "github": ("token",),
    "gitlab": ("token",),
    "jira": ("apiToken",),
    "linear": ("apiKey",),
    "notion": ("apiKey",),
}


class _Common(ApiModel):
    label: str | None = Field(default=None, pattern=LABEL)
    max_pages: int | None = Field(default=None, ge=1, le=100)


class GitHubConfig(_Common):
    token: SecretStr | None = None
    owner: str | None = Field(default=None, pattern=NAME)
    repo: str | None = Field(default=None, pattern=NAME)
    # GitHub Enterprise; default: the repository's forgeApiUrl, else api.github.com.
    api_url: str | None = Field(default=None, max_length=2000)


class GitLabConfig(_Common):
    host: str = Field(min_length=1, max_length=2000)
    token: SecretStr | None = None
    project_path: str = Field(pattern=PATH, max_length=500)


class JiraConfig(_Common):
    base_url: str = Field(min_length=1, max_length=2000)
    email: str = Field(min_length=3, max_length=320)
    api_token: SecretStr | None = None
    project_key: str | None = Field(default=None, pattern=PROJECT_KEY)
    done_status_name: str | None = Field(default=None, max_length=100)
    todo_status_name: str | None = Field(default=None, max_length=100)
    repo_url: str | None = Field(default=None, max_length=2000)


class LinearConfig(_Common):
    api_key: SecretStr | None = None
    team_id: str | None = Field(default=None, pattern=ID)
    project_id: str | None = Field(default=None, pattern=ID)
    repo_url: str | None = Field(default=None, max_length=2000)


class NotionConfig(_Common):
    api_key: SecretStr | None = None
    database_id: str = Field(pattern=ID)
    status_property: str | None = Field(default=None, max_length=100)
    done_value: str | None = Field(default=None, max_length=100)
    title_property: str | None = Field(default=None, max_length=100)
    # The multi-select property holding the label (not in the reference: Optio's is fixed).
    label_property: str | None = Field(default=None, max_length=100)
    repo_url: str | None = Field(default=None, max_length=2000)


CONFIG_MODELS: dict[str, type[_Common]] = {
    "github": GitHubConfig,
    "gitlab": GitLabConfig,
    "jira": JiraConfig,
    "linear": LinearConfig,
    "notion": NotionConfig,
}


class ProviderCreate(ApiModel):
    source: Source
    name: str | None = Field(default=None, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    sync_interval_seconds: int | None = Field(default=None, ge=10, le=86_400)


class ProviderUpdate(ApiModel):
    name: str | None = Field(default=None, max_length=200)
    # Merged into the stored config; a credential field replaces the stored one.
    config: dict[str, Any] | None = None
    enabled: bool | None = None
    sync_interval_seconds: int | None = Field(default=None, ge=10, le=86_400)


class ProviderPublic(ApiOut):
    id: str
    workspace_id: str
    source: str
    name: str | None
    config: dict[str, Any]
    enabled: bool
    sync_interval_seconds: int | None
    consecutive_failures: int
    last_error: str | None
    last_error_at: datetime | None
    last_synced_at: datetime | None
    has_auth_failure: bool = False
    # Names of the credential fields that are stored (their values never leave).
    credentials: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class ProvidersPublic(ApiOut):
    providers: list[ProviderPublic]


class ProviderEnvelope(ApiOut):
    provider: ProviderPublic


class CreatedTicketTaskPublic(ApiOut):
    task_id: str
    external_id: str
    repo_url: str
    title: str


class ProviderSynced(ApiOut):
    """One provider's sync: a `TicketSyncResult` with the provider's source."""

    source: str
    provider_id: str
    fetched: int
    created: list[CreatedTicketTaskPublic]
    already_linked: int
    unresolved: int
    requests: int
    skipped: str | None
    error: str | None
    disabled: bool


class TicketSyncPublic(ApiOut):
    synced: int
    created: list[CreatedTicketTaskPublic]
    providers: list[ProviderSynced]


class IssueRepo(ApiOut):
    """The workspace's repository an issue belongs to; all null when none is known."""

    id: str | None
    full_name: str | None
    repo_url: str | None
    provider_id: str | None


class IssueTask(ApiOut):
    task_id: str
    state: str


class IssuePublic(ApiOut):
    id: str
    number: int | None
    external_id: str
    source: str
    title: str
    body: str
    state: str
    url: str
    labels: list[str]
    has_optio_label: bool
    author: str | None
    assignee: str | None
    repo: IssueRepo
    # As the forge or provider wrote them.
    created_at: str | None
    updated_at: str | None
    optio_task: IssueTask | None


class IssueSourceError(ApiOut):
    source: str
    error: str


class IssuesPublic(ApiOut):
    issues: list[IssuePublic]
    errors: list[IssueSourceError]


class IssueAssign(ApiModel):
    issue_number: int = Field(ge=1)
    repo_id: str = Field(min_length=1, max_length=36)
    title: str | None = Field(default=None, max_length=1000)
    body: str | None = Field(default=None, max_length=200_000)
    agent_type: AgentType | None = None


# ---- workflow and activity payloads -------------------------------------------------------


@dataclass
class TicketSyncInput:
    provider_id: str


@dataclass
class CreatedTicketTask:
    task_id: str
    external_id: str
    repo_url: str
    title: str


@dataclass
class TicketSyncResult:
    provider_id: str
    fetched: int = 0
    created: list[CreatedTicketTask] = field(default_factory=list)
    already_linked: int = 0
    # Tickets whose repository could not be told (no repo label, no provider repoUrl).
    unresolved: int = 0
    requests: int = 0
    skipped: str | None = None
    error: str | None = None
    disabled: bool = False


@dataclass
class TicketDoneInput:
    task_id: str

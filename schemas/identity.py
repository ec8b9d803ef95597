"""HTTP shapes of secrets, workspaces, members and personal access tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from schemas.common import ApiModel, ApiOut
from schemas.money import Usd

MAX_SECRET_BYTES = 64 * 1024
SECRET_NAME = r"^[A-Z_][A-Z0-9_]*$"
WorkspaceRole = Literal["admin", "member", "viewer"]


class SecretCreate(ApiModel):
    name: str = Field(min_length=1, max_length=200, pattern=SECRET_NAME)
    # SecretStr: a stray repr or validation error never prints the value.
    value: SecretStr
    scope: str | None = Field(default=None, min_length=1, max_length=1000)

    @field_validator("value")
    @classmethod
    def _size(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) > MAX_SECRET_BYTES:
            raise ValueError(f"must be at most {MAX_SECRET_BYTES} bytes")
        return value


class SecretPublic(ApiOut):
    id: str
    name: str
    scope: str
    user_id: str | None
    created_at: datetime
    updated_at: datetime


class WorkspaceCreate(ApiModel):
    name: str = Field(min_length=1, max_length=100)
    slug: str = Field(min_length=1, max_length=50, pattern=r"^[a-z0-9-]+$")
    description: str | None = Field(default=None, max_length=500)


class WorkspaceUpdate(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    slug: str | None = Field(default=None, min_length=1, max_length=50, pattern=r"^[a-z0-9-]+$")
    description: str | None = Field(default=None, max_length=500)
    allow_docker_in_docker: bool | None = None
    # Spend ceiling per calendar month (UTC); null removes it (docs/costs.md).
    monthly_budget_usd: Usd | None = None


class WorkspacePublic(ApiOut):
    id: str
    name: str
    slug: str
    description: str | None
    created_by: str | None
    allow_docker_in_docker: bool
    monthly_budget_usd: str | None = None
    created_at: datetime
    updated_at: datetime


class MemberAdd(ApiModel):
    user_id: str = Field(min_length=1, max_length=36)
    role: WorkspaceRole = "member"


class MemberUpdate(ApiModel):
    role: WorkspaceRole


class ApiKeyCreate(ApiModel):
    name: str = Field(default="API key", min_length=1, max_length=100)
    # An ISO 8601 date-time in the future; a number (`0`, read as 1970) or a past
    # moment would mint a key that is dead on arrival.
    expires_at: datetime | None = None

    @field_validator("expires_at", mode="before")
    @classmethod
    def _iso_text(cls, value: object) -> object:
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("must be an ISO 8601 date-time, e.g. 2030-01-31T00:00:00Z")
        return value

    @field_validator("expires_at")
    @classmethod
    def _in_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        if aware <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return aware


class ApiKeyPublic(ApiOut):
    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class SecretsPublic(ApiOut):
    secrets: list[SecretPublic]


class SecretEnvelope(ApiOut):
    secret: SecretPublic
    name: str
    scope: str


class WorkspaceWithRole(WorkspacePublic):
    role: WorkspaceRole


class WorkspacesPublic(ApiOut):
    workspaces: list[WorkspaceWithRole]
    active_workspace_id: str


class WorkspaceEnvelope(ApiOut):
    workspace: WorkspacePublic


class WorkspaceRoleEnvelope(WorkspaceEnvelope):
    role: WorkspaceRole


class WorkspaceSwitched(ApiOut):
    ok: bool
    workspace_id: str


class MemberPublic(ApiOut):
    user_id: str
    role: WorkspaceRole
    email: str | None
    display_name: str | None
    avatar_url: str | None
    created_at: datetime


class MembersPublic(ApiOut):
    members: list[MemberPublic]


class UserPublic(ApiOut):
    id: str
    provider: str
    email: str | None
    display_name: str | None
    avatar_url: str | None
    workspace_id: str
    workspace_role: WorkspaceRole


class MePublic(ApiOut):
    user: UserPublic
    auth_disabled: bool


class ApiKeyMinted(ApiOut):
    """The only time a key's token is shown."""

    token: str
    token_id: str
    prefix: str
    name: str


class ApiKeysPublic(ApiOut):
    keys: list[ApiKeyPublic]


class AuthProvider(ApiOut):
    name: str
    display_name: str


class AuthProvidersPublic(ApiOut):
    """The sign-in providers this instance has configured."""

    providers: list[AuthProvider]


class AgentCredential(ApiOut):
    """Whether an agent has a credential, and where it comes from; never its value."""

    configured: bool
    source: Literal["secret", "settings"] | None


class SubscriptionStatus(ApiOut):
    # "available" means "configured": the vendors' subscription APIs are not probed, so
    # the expiry and validation fields stay empty.
    available: bool
    source: Literal["secret", "settings"] | None
    expires_at: str | None
    expired: bool
    error: str | None
    last_validated: str | None


class CredentialStatusPublic(ApiOut):
    subscription: SubscriptionStatus
    agents: dict[str, AgentCredential]


class UsageReport(ApiOut):
    available: bool
    reason: str
    has_recent_auth_failure: bool
    auth_failures: dict[str, int]
    agents: dict[str, AgentCredential]


class UsagePublic(ApiOut):
    usage: UsageReport


class UserBrief(ApiOut):
    id: str
    email: str | None
    display_name: str | None
    avatar_url: str | None


class UserLookupPublic(ApiOut):
    user: UserBrief

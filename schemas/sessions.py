"""Interactive sessions (inventory §3.19): HTTP shapes, WebSocket frames, workflow inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from schemas.common import ApiModel, ApiOut

SessionState = Literal["provisioning", "active", "ended", "failed"]
# ---- HTTP -------------------------------------------------------------------------------


class SessionCreate(ApiModel):
    repo_url: str = Field(min_length=1, max_length=500)


class SessionOut(ApiOut):
    id: str
    workspace_id: str
    user_id: str
    repo_url: str
    base_branch: str
    branch: str
    state: str
    agent_type: str
    agent_session_id: str | None = None
    model: str | None = None
    cost_usd: str | None = None
    error: str | None = None
    end_reason: str | None = None
    created_at: str
    last_activity_at: str
    ended_at: str | None = None


class SessionEnvelope(ApiOut):
    session: SessionOut


class SessionDetail(ApiOut):
    session: SessionOut
    model_config_: dict[str, Any] | None = Field(default=None, alias="modelConfig")


class SessionList(ApiOut):
    sessions: list[SessionOut]
    active_count: int


class ChatEventOut(ApiOut):
    id: int
    session_id: str
    stream: str
    content: str
    log_type: str
    metadata: dict[str, Any] | None = None
    timestamp: str


class ChatHistory(ApiOut):
    events: list[ChatEventOut]


class SessionPrCreate(ApiModel):
    pr_url: str = Field(min_length=1, max_length=500)
    pr_number: int = Field(ge=1)


class SessionPrOut(ApiOut):
    id: str
    session_id: str
    pr_url: str
    pr_number: int
    created_at: str


class SessionPrEnvelope(ApiOut):
    pr: SessionPrOut


class SessionPrList(ApiOut):
    prs: list[SessionPrOut]


# ---- WebSocket frames (client -> server) ------------------------------------------------


class TerminalResize(ApiModel):
    type: Literal["resize"]
    cols: int = Field(ge=1, le=1000)
    rows: int = Field(ge=1, le=1000)


class ChatMessage(ApiModel):
    type: Literal["message"]
    content: str = Field(min_length=1, max_length=32_000)


class ChatInterrupt(ApiModel):
    type: Literal["interrupt"]


class ChatSetModel(ApiModel):
    type: Literal["set_model"]
    model: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._\-\[\]]+$")


# ---- workflow ---------------------------------------------------------------------------


@dataclass
class SessionInput:
    session_id: str
    idle_timeout_seconds: float
    # Set by continue-as-new: the worktree exists already.
    prepared: bool = False


@dataclass
class SessionRef:
    session_id: str


@dataclass
class SessionEndInput:
    session_id: str
    reason: str  # ended | idle | failed


@dataclass
class SessionPrepared:
    ready: bool
    error: str | None = None

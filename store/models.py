"""SQLAlchemy models: configuration and the queryable mirror of Temporal's execution."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.types import JSONType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Workspace(TimestampMixin, Base):
    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(50), unique=True)
    description: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str | None] = mapped_column(String(36))
    allow_docker_in_docker: Mapped[bool] = mapped_column(Boolean, default=False)
    # Monthly spend ceiling (USD, decimal string); new runs are refused once it is reached.
    monthly_budget_usd: Mapped[str | None] = mapped_column(String(32))
    # "YYYY-MM" of the last over-budget notification, so it goes out once a month.
    budget_notified_month: Mapped[str | None] = mapped_column(String(7))


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("provider", "external_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # "local" for the built-in admin; github/google/gitlab/oidc once OAuth lands.
    provider: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200))
    avatar_url: Mapped[str | None] = mapped_column(Text)
    default_workspace_id: Mapped[str | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="SET NULL")
    )
    last_login_at: Mapped[datetime | None]


class WorkspaceMember(Base):
    __tablename__ = "workspace_members"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10), default="member")  # admin | member | viewer
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthSession(Base):
    """A browser session (cookie `optio_session`); only the token's hash is kept."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A personal access token (`optio_pat_...`); only the hash is kept."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12))
    hashed_key: Mapped[str] = mapped_column(String(64), unique=True)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Repo(TimestampMixin, Base):
    __tablename__ = "repos"
    __table_args__ = (UniqueConstraint("repo_url", "workspace_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    repo_url: Mapped[str] = mapped_column(Text)
    full_name: Mapped[str] = mapped_column(String(300))
    git_platform: Mapped[str] = mapped_column(String(20), default="local")
    is_private: Mapped[bool] = mapped_column(Boolean, default=False)
    default_branch: Mapped[str] = mapped_column(String(255), default="main")
    default_agent_type: Mapped[str] = mapped_column(String(30), default="claude-code")
    test_command: Mapped[str | None] = mapped_column(Text)
    auto_merge: Mapped[bool] = mapped_column(Boolean, default=False)
    cautious_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_resume: Mapped[bool] = mapped_column(Boolean, default=False)
    max_auto_resumes: Mapped[int | None] = mapped_column(Integer)
    max_concurrent_tasks: Mapped[int] = mapped_column(Integer, default=2)
    stall_threshold_ms: Mapped[int | None] = mapped_column(BigInteger)
    max_turns_coding: Mapped[int | None] = mapped_column(Integer)
    # Remote forges (migration 0006, docs/forges.md).
    require_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    review_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    review_trigger: Mapped[str | None] = mapped_column(String(20))  # on_pr | on_ci_pass
    review_prompt_template: Mapped[str | None] = mapped_column(Text)
    forge_api_url: Mapped[str | None] = mapped_column(Text)
    # Last verified webhook delivery: while they arrive, polling is only a safety net.
    webhook_seen_at: Mapped[datetime | None]
    # Budget of each task of this repo (USD), unless the task sets its own (migration 0012).
    max_cost_usd: Mapped[str | None] = mapped_column(String(32))
    # Task events posted to the repo's Slack webhook; None means the default set.
    slack_notify_on: Mapped[list[str] | None] = mapped_column(JSONType)
    # The model each agent runs for this repository's tasks (migration 0014); a task's own
    # model comes first, OPTIO_AGENT_MODELS after (integrations/agents/models.py).
    claude_model: Mapped[str | None] = mapped_column(String(100))
    codex_model: Mapped[str | None] = mapped_column(String(100))
    copilot_model: Mapped[str | None] = mapped_column(String(100))
    opencode_model: Mapped[str | None] = mapped_column(String(100))
    gemini_model: Mapped[str | None] = mapped_column(String(100))


class Task(TimestampMixin, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_workspace_state", "workspace_id", "state"),
        # The order of GET /api/tasks (migration 0019).
        Index("ix_tasks_workspace_created_id", "workspace_id", text("created_at DESC"), "id"),
        UniqueConstraint("workspace_id", "idempotency_key"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text)
    repo_url: Mapped[str] = mapped_column(Text)
    repo_branch: Mapped[str] = mapped_column(String(255), default="main")
    state: Mapped[str] = mapped_column(String(20), default="pending")
    agent_type: Mapped[str] = mapped_column(String(30))
    task_type: Mapped[str] = mapped_column(String(20), default="coding")
    session_id: Mapped[str | None] = mapped_column(String(200))
    pr_url: Mapped[str | None] = mapped_column(Text)
    pr_number: Mapped[int | None] = mapped_column(Integer)
    pr_state: Mapped[str | None] = mapped_column(String(20))
    pr_checks_status: Mapped[str | None] = mapped_column(String(20))
    pr_review_status: Mapped[str | None] = mapped_column(String(30))
    result_summary: Mapped[str | None] = mapped_column(Text)
    cost_usd: Mapped[str | None] = mapped_column(String(32))
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    model_used: Mapped[str | None] = mapped_column(String(100))
    # The task's budget (USD); its cost is the sum of its agent runs (store/costs.py).
    max_cost_usd: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    created_by: Mapped[str | None] = mapped_column(String(36))
    # Subtasks (inventory §3.6): child, step or review under a parent task.
    parent_task_id: Mapped[str | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), index=True
    )
    subtask_order: Mapped[int] = mapped_column(Integer, default=0)
    blocks_parent: Mapped[bool] = mapped_column(Boolean, default=False)
    # Sent by clients as the Idempotency-Key header so a retried POST creates one task.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # Highest transition sequence recorded; the idempotency key of record_transition.
    transition_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Set by the API as it commits a task whose workflow it starts right after; cleared by
    # the workflow's first transition. Still set after a while: the start was lost (the
    # API stopped in between) and api/task_starts.py makes it again.
    start_requested_at: Mapped[datetime | None] = mapped_column(index=True)
    last_activity_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class TaskEvent(Base):
    __tablename__ = "task_events"
    __table_args__ = (UniqueConstraint("task_id", "seq"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    workspace_id: Mapped[str] = mapped_column(String(36), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(60))
    message: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentRun(Base):
    """One launch of an agent for a task: the sandbox, its token and its outcome."""

    __tablename__ = "agent_runs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[str] = mapped_column(String(36), index=True)
    agent_type: Mapped[str] = mapped_column(String(30))
    sandbox_name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(20), default="starting")
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    last_output_at: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # What this run cost: the running total from its usage entries, then its final result.
    cost_usd: Mapped[str | None] = mapped_column(String(32))
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    model_used: Mapped[str | None] = mapped_column(String(100))


class TaskLog(Base):
    __tablename__ = "task_logs"
    __table_args__ = (
        UniqueConstraint("agent_run_id", "seq"),
        Index("ix_task_logs_task_ts", "task_id", "timestamp"),
    )
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    workspace_id: Mapped[str] = mapped_column(String(36), index=True)
    agent_run_id: Mapped[str | None] = mapped_column(String(36))
    seq: Mapped[int | None] = mapped_column(Integer)
    stream: Mapped[str] = mapped_column(String(10), default="stdout")
    content: Mapped[str] = mapped_column(Text)
    log_type: Mapped[str] = mapped_column(String(20), default="text")
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)


class PullRequest(TimestampMixin, Base):
    """PR records of the `local` forge (for github/gitlab the forge keeps them)."""

    __tablename__ = "pull_requests"
    __table_args__ = (
        UniqueConstraint("repo_url", "number"),
        Index("ix_pull_requests_head", "repo_url", "head_branch", "state"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36), index=True)
    repo_url: Mapped[str] = mapped_column(Text)
    number: Mapped[int] = mapped_column(Integer)
    task_id: Mapped[str | None] = mapped_column(String(36))
    head_branch: Mapped[str] = mapped_column(String(255))
    base_branch: Mapped[str] = mapped_column(String(255))
    head_sha: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(10), default="open")  # open | merged | closed
    merge_commit_sha: Mapped[str | None] = mapped_column(String(64))
    merge_method: Mapped[str | None] = mapped_column(String(10))
    checks_status: Mapped[str] = mapped_column(String(10), default="none")
    checks_sha: Mapped[str | None] = mapped_column(String(64))
    checks_output: Mapped[str | None] = mapped_column(Text)
    mergeable: Mapped[bool | None] = mapped_column(Boolean)
    additions: Mapped[int] = mapped_column(Integer, default=0)
    deletions: Mapped[int] = mapped_column(Integer, default=0)
    changed_files: Mapped[int] = mapped_column(Integer, default=0)
    merged_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class TaskDependency(Base):
    """`task_id` may start only when `depends_on_task_id` has completed."""

    __tablename__ = "task_dependencies"
    __table_args__ = (UniqueConstraint("task_id", "depends_on_task_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36), index=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    depends_on_task_id: Mapped[str] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskComment(TimestampMixin, Base):
    __tablename__ = "task_comments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36), index=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(36))
    content: Mapped[str] = mapped_column(Text)


class TaskMessage(Base):
    __tablename__ = "task_messages"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36), index=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(36))
    content: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(10), default="soft")
    delivered_at: Mapped[datetime | None]
    acked_at: Mapped[datetime | None]
    delivery_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ForgeDelivery(Base):
    """Webhook deliveries already handled, so a replayed delivery has no effect."""

    __tablename__ = "forge_deliveries"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # "<provider>:<delivery id>"
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

"""Blueprints, standalone tasks and their runs, triggers and templates (inventory §5).

Table names follow the reference (`task_configs`, `workflows`, `workflow_runs`,
`workflow_triggers`, `prompt_templates`) so its vocabulary keeps working.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.errors import NotFoundError
from store.models import Base, TimestampMixin, new_id
from store.scoping import get_scoped, scoped_select
from store.types import JSONType, utcnow


class TaskConfig(TimestampMixin, Base):
    """A repo-task blueprint ("Scheduled" in the UI): triggers instantiate fresh repo tasks."""

    __tablename__ = "task_configs"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text, default="")
    prompt_template_id: Mapped[str | None] = mapped_column(String(36))
    repo_url: Mapped[str] = mapped_column(Text)
    repo_branch: Mapped[str | None] = mapped_column(String(255))
    agent_type: Mapped[str | None] = mapped_column(String(30))
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(36))
    # Budget of each run (the task it creates), USD (migration 0012).
    max_cost_usd: Mapped[str | None] = mapped_column(String(32))


class StandaloneTask(TimestampMixin, Base):
    """A standalone task ("Jobs"): an agent run with no repository."""

    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    prompt_template: Mapped[str] = mapped_column(Text)
    params_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    environment_spec: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    agent_runtime: Mapped[str] = mapped_column(String(30), default="claude-code")
    model: Mapped[str | None] = mapped_column(String(100))
    max_turns: Mapped[int | None] = mapped_column(Integer)
    budget_usd: Mapped[str | None] = mapped_column(String(32))
    max_concurrent: Mapped[int] = mapped_column(Integer, default=2)
    max_retries: Mapped[int] = mapped_column(Integer, default=1)
    warm_pool_size: Mapped[int] = mapped_column(Integer, default=0)
    max_pod_instances: Mapped[int] = mapped_column(Integer, default=1)
    max_agents_per_pod: Mapped[int] = mapped_column(Integer, default=2)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(36))


class StandaloneRun(TimestampMixin, Base):
    """One run of a standalone task; its id is the workflow id without the `run-` prefix."""

    __tablename__ = "workflow_runs"
    __table_args__ = (Index("ix_workflow_runs_workflow_created", "workflow_id", "created_at"),)
    # Schedule-started runs carry the fire time in their id, hence longer than a uuid.
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    workspace_id: Mapped[str] = mapped_column(String(36), index=True)
    trigger_id: Mapped[str | None] = mapped_column(String(36))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Every attempt's cost: the finished ones' plus what the current one reported so far.
    cost_usd: Mapped[str | None] = mapped_column(String(32))
    # What the finished attempts cost, so the current one's (cumulative) reports add to it.
    prior_attempts_cost_usd: Mapped[str | None] = mapped_column(String(32))
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    model_used: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    session_id: Mapped[str | None] = mapped_column(String(200))
    # The sandbox of the current attempt and the hash of its ingest token.
    sandbox_id: Mapped[str | None] = mapped_column(String(120))
    token_hash: Mapped[str | None] = mapped_column(String(64))
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class StandaloneRunLog(Base):
    __tablename__ = "workflow_run_logs"
    __table_args__ = (
        UniqueConstraint("workflow_run_id", "attempt", "seq"),
        Index("ix_workflow_run_logs_run_ts", "workflow_run_id", "timestamp"),
    )
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    workflow_run_id: Mapped[str] = mapped_column(ForeignKey("workflow_runs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    seq: Mapped[int] = mapped_column(Integer)
    stream: Mapped[str] = mapped_column(String(10), default="stdout")
    content: Mapped[str] = mapped_column(Text)
    log_type: Mapped[str] = mapped_column(String(20), default="text")
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)


class Trigger(TimestampMixin, Base):
    """What starts runs of a blueprint or standalone task; schedules live in Temporal."""

    __tablename__ = "workflow_triggers"
    __table_args__ = (UniqueConstraint("target_type", "target_id", "type"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36), index=True)
    target_type: Mapped[str] = mapped_column(String(20))  # task_config | job
    target_id: Mapped[str] = mapped_column(String(36), index=True)
    type: Mapped[str] = mapped_column(String(10))  # manual | schedule | webhook | ticket
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    param_mapping: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Webhook paths are global (the hook URL has no workspace): unique in the database.
    webhook_path: Mapped[str | None] = mapped_column(String(200), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_fired_at: Mapped[datetime | None]
    next_fire_at: Mapped[datetime | None]


class PromptTemplate(TimestampMixin, Base):
    __tablename__ = "prompt_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10), default="prompt")  # prompt|review|job|task
    description: Mapped[str | None] = mapped_column(Text)
    params_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    default_agent_type: Mapped[str | None] = mapped_column(String(30))
    # A default row: repo_url None = the workspace default, else that repo's override.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    repo_url: Mapped[str | None] = mapped_column(Text)
    auto_merge: Mapped[bool] = mapped_column(Boolean, default=False)


class TaskTemplate(TimestampMixin, Base):
    """A reusable repo-task form: prefilled fields a client turns into POST /api/tasks."""

    __tablename__ = "task_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text)
    repo_url: Mapped[str | None] = mapped_column(Text)
    repo_branch: Mapped[str | None] = mapped_column(String(255))
    agent_type: Mapped[str | None] = mapped_column(String(30))
    priority: Mapped[int | None] = mapped_column(Integer)
    max_retries: Mapped[int | None] = mapped_column(Integer)
    params_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


# ---- queries ------------------------------------------------------------------------------

TARGET_OF_KIND = {"repo-blueprint": "task_config", "standalone": "job"}


async def get_blueprint(session: AsyncSession, *, config_id: str, workspace_id: str) -> TaskConfig:
    return await get_scoped(
        session, TaskConfig, row_id=config_id, workspace_id=workspace_id, label="Task"
    )


async def get_standalone(
    session: AsyncSession, *, standalone_id: str, workspace_id: str
) -> StandaloneTask:
    return await get_scoped(
        session, StandaloneTask, row_id=standalone_id, workspace_id=workspace_id, label="Task"
    )


async def find_kind(
    session: AsyncSession, *, row_id: str, workspace_id: str
) -> TaskConfig | StandaloneTask | None:
    """A blueprint or standalone task of this workspace (repo tasks are looked up first)."""
    config = await session.get(TaskConfig, row_id)
    if config is not None:
        return config if config.workspace_id == workspace_id else None
    job = await session.get(StandaloneTask, row_id)
    return job if job is not None and job.workspace_id == workspace_id else None


async def list_kind(
    session: AsyncSession,
    model: type[TaskConfig] | type[StandaloneTask],
    *,
    workspace_id: str,
    limit: int,
    offset: int,
) -> list[Any]:
    stmt = scoped_select(model, workspace_id=workspace_id)
    stmt = stmt.order_by(model.created_at.desc(), model.id).limit(limit).offset(offset)
    return list((await session.execute(stmt)).scalars())


async def list_triggers(session: AsyncSession, *, target_id: str) -> list[Trigger]:
    stmt = select(Trigger).where(Trigger.target_id == target_id).order_by(Trigger.created_at)
    return list((await session.execute(stmt)).scalars())


async def get_trigger(
    session: AsyncSession, *, target_id: str, trigger_id: str, workspace_id: str
) -> Trigger:
    row = await get_scoped(
        session, Trigger, row_id=trigger_id, workspace_id=workspace_id, label="Trigger"
    )
    if row.target_id != target_id:
        raise NotFoundError("Trigger not found")
    return row


async def find_webhook(session: AsyncSession, *, path: str) -> Trigger | None:
    stmt = select(Trigger).where(
        Trigger.webhook_path == path, Trigger.type == "webhook", Trigger.enabled.is_(True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_runs(
    session: AsyncSession, *, standalone_id: str, limit: int = 50
) -> list[StandaloneRun]:
    stmt = (
        select(StandaloneRun)
        .where(StandaloneRun.workflow_id == standalone_id)
        .order_by(StandaloneRun.created_at.desc(), StandaloneRun.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def list_run_logs(
    session: AsyncSession, *, run_id: str, limit: int = 1000
) -> list[StandaloneRunLog]:
    stmt = (
        select(StandaloneRunLog)
        .where(StandaloneRunLog.workflow_run_id == run_id)
        .order_by(StandaloneRunLog.attempt, StandaloneRunLog.seq)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())

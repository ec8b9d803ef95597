"""MCP servers and custom skills (inventory §3.21): rows and the queries a run needs.

A row is global to its workspace (repo_url NULL) or scoped to one repository. At run
start the enabled global rows plus those of the task's repo apply; a repo row wins
over a global row of the same name.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, TimestampMixin, new_id
from store.types import JSONType


class McpServer(TimestampMixin, Base):
    __tablename__ = "mcp_servers"
    __table_args__ = (Index("ix_mcp_servers_workspace_repo", "workspace_id", "repo_url"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    command: Mapped[str] = mapped_column(Text)
    args: Mapped[list[str]] = mapped_column(JSONType, default=list)
    env: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    install_command: Mapped[str | None] = mapped_column(Text)
    repo_url: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class CustomSkill(TimestampMixin, Base):
    __tablename__ = "custom_skills"
    __table_args__ = (Index("ix_custom_skills_workspace_repo", "workspace_id", "repo_url"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text)
    repo_url: Mapped[str | None] = mapped_column(Text)
    layout: Mapped[str] = mapped_column(String(20), default="commands")
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # None: every agent type.
    agent_types: Mapped[list[str] | None] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


RowT = TypeVar("RowT", McpServer, CustomSkill)


def _by_name_repo_wins(rows: list[RowT]) -> list[RowT]:
    chosen: dict[str, RowT] = {}
    for row in sorted(rows, key=lambda r: (r.repo_url is not None, r.created_at)):
        chosen[row.name] = row
    return sorted(chosen.values(), key=lambda r: r.name)


async def servers_for_run(
    session: AsyncSession, *, workspace_id: str, repo_url: str
) -> list[McpServer]:
    stmt = select(McpServer).where(
        McpServer.workspace_id == workspace_id,
        McpServer.enabled.is_(True),
        or_(McpServer.repo_url.is_(None), McpServer.repo_url == repo_url),
    )
    return _by_name_repo_wins(list((await session.execute(stmt)).scalars()))


async def skills_for_run(
    session: AsyncSession, *, workspace_id: str, repo_url: str, agent_type: str
) -> list[CustomSkill]:
    stmt = select(CustomSkill).where(
        CustomSkill.workspace_id == workspace_id,
        CustomSkill.enabled.is_(True),
        or_(CustomSkill.repo_url.is_(None), CustomSkill.repo_url == repo_url),
    )
    rows = [
        r
        for r in (await session.execute(stmt)).scalars()
        if not r.agent_types or agent_type in r.agent_types
    ]
    return _by_name_repo_wins(rows)


async def prompt_templates(
    session: AsyncSession, *, workspace_id: str, repo_url: str
) -> tuple[str | None, str | None]:
    """(the repo's override, the workspace default) of the coding prompt template."""
    from store.blueprints import PromptTemplate  # the templates' own module owns the table

    stmt = select(PromptTemplate).where(
        PromptTemplate.workspace_id == workspace_id,
        PromptTemplate.is_default.is_(True),
        PromptTemplate.kind == "prompt",
        or_(PromptTemplate.repo_url.is_(None), PromptTemplate.repo_url == repo_url),
    )
    rows = list((await session.execute(stmt)).scalars())
    repo = next((r.template for r in rows if r.repo_url == repo_url), None)
    default = next((r.template for r in rows if r.repo_url is None), None)
    return repo, default

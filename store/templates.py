"""Template lookups: the effective agent prompt of a repo, and rendering a blueprint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFoundError
from core.prompt_chain import (
    BUILTIN_PROMPT_TEMPLATE,
    BUILTIN_REVIEW_TEMPLATE,
    EffectivePrompt,
    choose_effective,
    render_user_template,
)
from core.script_params import render_prompt
from core.states import TaskState
from store.blueprints import PromptTemplate, TaskConfig
from store.models import Task
from store.tasks import find_repo


async def _default_row(
    session: AsyncSession, *, workspace_id: str, repo_url: str | None, kind: str
) -> PromptTemplate | None:
    stmt = select(PromptTemplate).where(
        PromptTemplate.workspace_id == workspace_id,
        PromptTemplate.is_default.is_(True),
        PromptTemplate.kind == kind,
        PromptTemplate.repo_url.is_(None)
        if repo_url is None
        else PromptTemplate.repo_url == repo_url,
    )
    return (
        (await session.execute(stmt.order_by(PromptTemplate.updated_at.desc()))).scalars().first()
    )


def _as_effective(row: PromptTemplate | None, source: str) -> EffectivePrompt | None:
    if row is None:
        return None
    return EffectivePrompt(
        template=row.template,
        source="repo" if source == "repo" else "workspace",
        template_id=row.id,
        auto_merge=row.auto_merge,
    )


async def effective_prompt_template(
    session: AsyncSession, *, workspace_id: str, repo_url: str | None, kind: str = "prompt"
) -> EffectivePrompt:
    """The agent prompt template for a repo: repo override -> workspace default -> built-in.

    `kind="review"` resolves the review agent's prompt along the same chain.
    """
    override = (
        await _default_row(session, workspace_id=workspace_id, repo_url=repo_url, kind=kind)
        if repo_url
        else None
    )
    default = await _default_row(session, workspace_id=workspace_id, repo_url=None, kind=kind)
    return choose_effective(
        repo_override=_as_effective(override, "repo"),
        workspace_default=_as_effective(default, "workspace"),
        builtin=BUILTIN_REVIEW_TEMPLATE if kind == "review" else BUILTIN_PROMPT_TEMPLATE,
    )


@dataclass(frozen=True)
class RenderedBlueprint:
    title: str
    prompt: str
    agent_type: str


async def render_blueprint(
    session: AsyncSession,
    *,
    config: TaskConfig,
    params: dict[str, Any],
    fallback_agent_type: str,
) -> RenderedBlueprint:
    """Title and prompt of the task a blueprint run creates (TemplateError if unbalanced).

    The agent type is settled first: a `script` prompt gets its parameters as
    environment variables, never as code (core.script_params).
    """
    source, agent_type = config.prompt, config.agent_type
    if config.prompt_template_id:
        template = await session.get(PromptTemplate, config.prompt_template_id)
        if template is None or template.workspace_id != config.workspace_id:
            raise NotFoundError("The blueprint's prompt template no longer exists")
        source = template.template
        agent_type = agent_type or template.default_agent_type
    agent_type = agent_type or fallback_agent_type
    return RenderedBlueprint(
        title=render_user_template(config.title, params),
        prompt=render_prompt(source, params, agent_type=agent_type),
        agent_type=agent_type,
    )


async def new_blueprint_task(
    session: AsyncSession,
    *,
    config: TaskConfig,
    task_id: str,
    trigger_id: str | None,
    params: dict[str, Any],
) -> Task:
    """The pending repo task one blueprint run creates (added to the session, not committed)."""
    repo = await find_repo(session, workspace_id=config.workspace_id, repo_url=config.repo_url)
    rendered = await render_blueprint(
        session,
        config=config,
        params=params,
        fallback_agent_type=(repo.default_agent_type if repo else None) or "claude-code",
    )
    task = Task(
        id=task_id,
        workspace_id=config.workspace_id,
        title=rendered.title,
        prompt=rendered.prompt,
        repo_url=config.repo_url,
        repo_branch=config.repo_branch or (repo.default_branch if repo else "main"),
        agent_type=rendered.agent_type,
        priority=config.priority,
        max_retries=config.max_retries,
        # `triggerParams` is the reference's key; `params` is what our clients read.
        metadata_={
            "taskConfigId": config.id,
            "taskConfigName": config.name,
            "triggerId": trigger_id,
            "params": params,
            "triggerParams": params,
        },
        created_by=config.created_by,
        state=TaskState.PENDING,
        max_cost_usd=config.max_cost_usd,
    )
    session.add(task)
    await session.flush()
    return task

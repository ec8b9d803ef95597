"""Who hears about an event: subscribed webhooks, and Slack where it is configured."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.deliveries import delivery_input
from core.settings import Settings
from schemas.notify import DEFAULT_SLACK_EVENTS, DeliveryInput
from store.blueprints import StandaloneRun, StandaloneTask
from store.models import Repo, Task, TaskEvent
from store.secrets import GLOBAL, Secret, normalise_scope
from store.tasks import find_repo
from store.webhooks import subscribed

SLACK_URL_SECRET = "SLACK_WEBHOOK_URL"
ERROR_LIMIT = 2000
TASK_STATE_EVENTS = {
    "completed": "task.completed",
    "failed": "task.failed",
    "needs_attention": "task.needs_attention",
    "pr_opened": "task.pr_opened",
}

RUN_STATE_EVENTS = {
    "queued": "workflow_run.queued",
    "running": "workflow_run.started",
    "completed": "workflow_run.completed",
    "failed": "workflow_run.failed",
}


async def slack_configured(
    session: AsyncSession, *, workspace_id: str, repo_url: str | None
) -> bool:
    """Whether a SLACK_WEBHOOK_URL secret exists for the repo or the workspace (no decrypt)."""
    scopes = [GLOBAL] + ([normalise_scope(repo_url)] if repo_url else [])
    stmt = select(Secret.id).where(
        Secret.workspace_id == workspace_id,
        Secret.name == SLACK_URL_SECRET,
        Secret.scope.in_(scopes),
        Secret.user_id == "",
    )
    return (await session.execute(stmt.limit(1))).first() is not None


# Not about one task: the workspace's channel always hears of these.
SLACK_WORKSPACE_EVENTS = frozenset({"workspace.budget_exceeded"})


def slack_wants(repo: Repo | None, event: str) -> bool:
    if event in SLACK_WORKSPACE_EVENTS:
        return True
    wanted = repo.slack_notify_on if repo is not None else None
    return event in (DEFAULT_SLACK_EVENTS if wanted is None else wanted)


def task_data(task: Task, row: TaskEvent) -> dict[str, Any]:
    return {
        "taskId": task.id,
        "taskTitle": task.title,
        "repoUrl": task.repo_url,
        "repoBranch": task.repo_branch,
        "fromState": row.from_state,
        "toState": row.to_state,
        "prUrl": task.pr_url,
        # Capped: the payload travels through Temporal's history.
        "errorMessage": (row.message or "")[:ERROR_LIMIT] or None
        if row.to_state in ("failed", "needs_attention")
        else None,
        "taskType": task.task_type,
        "trigger": row.trigger,
        "costUsd": task.cost_usd,
    }


def run_data(
    run: StandaloneRun, job: StandaloneTask | None, *, from_state: str | None
) -> dict[str, Any]:
    started, finished = run.started_at, run.finished_at
    duration = int((finished - started).total_seconds() * 1000) if started and finished else None
    return {
        "runId": run.id,
        "workflowId": run.workflow_id,
        "workflowName": job.name if job else None,
        "state": run.state,
        "fromState": from_state,
        "params": run.params,
        "output": run.output,
        "costUsd": run.cost_usd,
        "inputTokens": run.input_tokens,
        "outputTokens": run.output_tokens,
        "modelUsed": run.model_used,
        "errorMessage": run.error_message,
        "retryCount": run.retry_count,
        "durationMs": duration,
        "startedAt": started.isoformat() if started else None,
        "finishedAt": finished.isoformat() if finished else None,
    }


async def plan_event(
    session: AsyncSession,
    settings: Settings,
    *,
    workspace_id: str,
    event: str,
    key: str,
    timestamp: str,
    data: dict[str, Any],
    repo_url: str | None,
) -> list[DeliveryInput]:
    """One delivery per subscribed webhook, plus Slack when configured and wanted.

    `key` names the event (e.g. "<taskId>:<seq>"): delivery ids derive from it, so
    planning the same event again yields the same deliveries.
    """
    plans = [
        delivery_input(
            settings,
            delivery_id=f"{hook.id}:{key}",
            workspace_id=workspace_id,
            event=event,
            timestamp=timestamp,
            data=data,
            webhook_id=hook.id,
        )
        for hook in await subscribed(session, workspace_id=workspace_id, event=event)
    ]
    repo = (
        await find_repo(session, workspace_id=workspace_id, repo_url=repo_url) if repo_url else None
    )
    if slack_wants(repo, event) and await slack_configured(
        session, workspace_id=workspace_id, repo_url=repo_url
    ):
        plans.append(
            delivery_input(
                settings,
                delivery_id=f"slack:{key}",
                workspace_id=workspace_id,
                event=event,
                timestamp=timestamp,
                data=data,
                repo_url=repo_url,
            )
        )
    return plans

"""What GET /api/tasks/:id adds to a repo task: its pipeline's progress and whether its
agent has gone quiet (inventory §3: `pipelineProgress`, `stallInfo`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from core.states import TaskState
from schemas.task_views import PipelineProgress, StallInfo
from schemas.tasks import TaskPublic
from store.graph import subtasks
from store.models import TaskLog
from store.tasks import find_repo
from store.types import utcnow

RUNNING_STEP = (TaskState.PROVISIONING, TaskState.RUNNING)
SUMMARY_CHARS = 200


async def pipeline_progress(session: AsyncSession, *, task_id: str) -> PipelineProgress | None:
    """The task's `step` subtasks in order; None for a task that is not a pipeline."""
    steps = [t for t in await subtasks(session, parent_id=task_id) if t.task_type == "step"]
    if not steps:
        return None
    current = next((i for i, s in enumerate(steps) if s.state != TaskState.COMPLETED), None)
    return {
        "totalSteps": len(steps),
        "completedSteps": sum(s.state == TaskState.COMPLETED for s in steps),
        "failedSteps": sum(s.state == TaskState.FAILED for s in steps),
        "runningSteps": sum(s.state in RUNNING_STEP for s in steps),
        "currentStepIndex": current,
        "currentStepTitle": steps[current].title if current is not None else None,
        "steps": [
            {"id": s.id, "title": s.title, "state": s.state, "subtaskOrder": s.subtask_order}
            for s in steps
        ],
    }


async def stall_info(
    session: AsyncSession, *, task: TaskPublic, settings: Settings
) -> StallInfo | None:
    """For a running task: how long its agent has been silent, against the repo's
    threshold (the run is failed as stalled past it); None otherwise."""
    if task.state != TaskState.RUNNING:
        return None
    repo = await find_repo(session, workspace_id=task.workspace_id, repo_url=task.repo_url)
    threshold = (repo.stall_threshold_ms if repo else None) or settings.stall_threshold_ms
    since = task.last_activity_at or task.started_at or task.updated_at
    silent_ms = max(0, int((utcnow() - since).total_seconds() * 1000)) if since else 0
    last = await session.execute(
        select(TaskLog.content)
        .where(TaskLog.task_id == task.id)
        .order_by(TaskLog.timestamp.desc(), TaskLog.id.desc())
        .limit(1)
    )
    summary = last.scalar_one_or_none()
    info: StallInfo = {
        "isStalled": silent_ms >= threshold,
        "silentForMs": silent_ms,
        "thresholdMs": threshold,
    }
    if summary is not None:
        info["lastLogSummary"] = summary[:SUMMARY_CHARS]
    return info

"""Which task each run belongs to, within one workspace: how a pod (named after its run) is
scoped to the caller's workspace by the rows, never by the pod's labels."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.blueprints import StandaloneRun
from store.models import AgentRun


def _standalone_run(sandbox: str) -> str | None:
    """A standalone run's attempt runs as `<runId>.<attempt>` (activities/standalone_runs.py)."""
    run_id, dot, attempt = sandbox.rpartition(".")
    return run_id if dot and attempt.isdigit() else None


async def tasks_of_runs(
    session: AsyncSession, *, workspace_id: str, run_ids: list[str]
) -> dict[str, str]:
    """The task (a standalone run's: its standalone task) of each of these pods' runs that
    belongs to the workspace."""
    rows = (
        await session.execute(
            select(AgentRun.id, AgentRun.task_id).where(
                AgentRun.id.in_(run_ids), AgentRun.workspace_id == workspace_id
            )
        )
    ).all()
    tasks: dict[str, str] = {row[0]: row[1] for row in rows}
    standalone = {s: r for s in run_ids if (r := _standalone_run(s)) is not None}
    if standalone:
        rows = (
            await session.execute(
                select(StandaloneRun.id, StandaloneRun.workflow_id).where(
                    StandaloneRun.id.in_(set(standalone.values())),
                    StandaloneRun.workspace_id == workspace_id,
                )
            )
        ).all()
        owners = {row[0]: row[1] for row in rows}
        tasks.update({s: owners[r] for s, r in standalone.items() if r in owners})
    return tasks

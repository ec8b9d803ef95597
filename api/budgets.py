"""The workspace's monthly budget at the door: no new run once it is spent.

The first refusal of a month notifies (webhooks subscribed to
`workspace.budget_exceeded`, and Slack), once: the month is recorded on the workspace and
the delivery ids derive from it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.state import AppState
from core.errors import ConflictError
from store.budgets import workspace_over_budget
from store.notify import plan_event
from store.types import utcnow
from temporal.deliveries import start_deliveries


async def refuse_over_monthly_budget(
    state: AppState, session: AsyncSession, *, workspace_id: str
) -> None:
    now = utcnow()
    over = await workspace_over_budget(session, workspace_id=workspace_id, now=now)
    if over is None:
        return
    workspace, spent = over
    month = now.strftime("%Y-%m")
    message = (
        f"The workspace's monthly budget is spent: ${spent} of ${workspace.monthly_budget_usd} "
        f"in {month} (UTC). New runs are refused until the month ends or an admin raises "
        "monthlyBudgetUsd (PATCH /api/workspaces/{id})."
    )
    if workspace.budget_notified_month != month:
        plans = await plan_event(
            session,
            state.settings,
            workspace_id=workspace_id,
            event="workspace.budget_exceeded",
            key=f"budget:{workspace_id}:{month}",
            timestamp=now.isoformat(),
            data={
                "workspaceId": workspace_id,
                "month": month,
                "spentUsd": str(spent),
                "monthlyBudgetUsd": workspace.monthly_budget_usd,
                "message": message,
            },
            repo_url=None,
        )
        if plans:
            client = await state.temporal_client()
            await start_deliveries(client, task_queue=state.settings.task_queue, deliveries=plans)
        workspace.budget_notified_month = month
        await session.commit()
    raise ConflictError(message, details={"code": "budget_exceeded", "spentUsd": str(spent)})

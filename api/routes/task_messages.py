"""Messages to a task's agent (inventory §3.8): live into a running Claude Code run,
else in the next run's prompt, or as the resume of a waiting task.

`POST /api/tasks/:id/message` answers how the message travels (`delivery.mode`) and,
for a resume, that it was delivered; a live or queued message is delivered later, with
`task:message_delivered` (written to the agent) and `task:message_acked` (the agent
took it) on the task's streams.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from sqlalchemy import func, select

from api import task_commands as commands
from api.deps import CurrentPrincipal, SessionDep, StateDep, require_role
from core.errors import ConflictError, TooManyRequestsError
from core.states import TaskState
from integrations.agents import takes_input_mid_run
from schemas.tasks import (
    DeliveryMode,
    MessageAccepted,
    MessageBody,
    MessageDelivery,
    MessageList,
    TaskMessageOut,
)
from store import live
from store.messages import mark_delivered, message_payload
from store.models import TaskMessage
from store.tasks import get_task
from store.types import utcnow

router = APIRouter(tags=["Tasks"])
MEMBER = require_role("member")
RATE_LIMIT = 10  # messages per user and task per minute, as the reference
RESUMABLE = (TaskState.NEEDS_ATTENTION, TaskState.FAILED)
# A run is on its way or under way: the message waits for the agent.
UNDER_WAY = (TaskState.PENDING, TaskState.WAITING_ON_DEPS, TaskState.QUEUED,
             TaskState.PROVISIONING, TaskState.RUNNING)  # fmt: skip


def _out(message: TaskMessage) -> TaskMessageOut:
    return TaskMessageOut.model_validate(message_payload(message))


@router.get("/api/tasks/{task_id}/messages", response_model=MessageList)
async def list_messages(
    task_id: str, principal: CurrentPrincipal, session: SessionDep
) -> MessageList:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    stmt = (
        select(TaskMessage)
        .where(TaskMessage.task_id == task.id)
        .order_by(TaskMessage.created_at, TaskMessage.id)
    )
    return MessageList(messages=[_out(m) for m in (await session.execute(stmt)).scalars()])


@router.post(
    "/api/tasks/{task_id}/message",
    status_code=202,
    dependencies=[MEMBER],
    response_model=MessageAccepted,
)
async def send_message(
    task_id: str,
    body: MessageBody,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
) -> MessageAccepted:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    mode = _delivery_mode(task.state, task.agent_type)
    since = utcnow() - timedelta(minutes=1)
    recent = await session.scalar(
        select(func.count()).where(
            TaskMessage.task_id == task.id,
            TaskMessage.user_id == principal.user_id,
            TaskMessage.created_at >= since,
        )
    )
    if (recent or 0) >= RATE_LIMIT:
        raise TooManyRequestsError(
            f"At most {RATE_LIMIT} messages a minute per task; wait a moment and send again"
        )
    message = TaskMessage(
        workspace_id=task.workspace_id, task_id=task.id, user_id=principal.user_id,
        content=body.content, mode=body.mode,
    )  # fmt: skip
    session.add(message)
    await session.flush()
    live.publish(
        session, workspace_id=task.workspace_id, topic=live.task_topic(task.id),
        type="task:message", payload=message_payload(message),
    )  # fmt: skip
    if mode == "resume":
        # The resume prompt carries it: delivered now, so no later run repeats it.
        mark_delivered(session, [message])
    await session.commit()
    if mode == "resume":
        try:
            await commands.resume(
                await state.temporal_client(),
                task=task,
                task_queue=state.settings.task_queue,
                prompt=body.content,
                user_id=principal.user_id,
                force_restart=False,
            )
        except Exception as exc:
            # Not delivered after all: it waits for the task's next run instead.
            message.delivered_at = None
            message.delivery_error = str(exc)[:500]
            await session.commit()
            raise
    delivered = message.delivered_at.isoformat() if message.delivered_at else None
    return MessageAccepted(
        message=_out(message), delivery=MessageDelivery(mode=mode, delivered_at=delivered)
    )


def _delivery_mode(state: str, agent_type: str) -> DeliveryMode:
    if state in RESUMABLE:
        return "resume"
    if state not in UNDER_WAY:
        raise ConflictError(
            f"The task is {state}: messages reach an agent while the task runs or waits in "
            "needs_attention or failed"
        )
    if agent_type == "script":
        raise ConflictError(
            "A script agent reads no messages while it runs; send it once the task waits in "
            "needs_attention or failed, and it resumes with the message as its script"
        )
    if state == TaskState.RUNNING and takes_input_mid_run(agent_type):
        return "live"
    return "next_run"

"""Activities of the task graph: what a task waits on, and who to tell when it ends."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.tickets import start_ticket_writeback
from core.names import Signals
from core.settings import Settings
from core.states import TaskState
from schemas.workflow import (
    GraphInput,
    GraphSnapshot,
    PipelineInput,
    PipelineStep,
    PipelineSteps,
    StartTaskInput,
    TaskFinished,
)
from store.graph import dependency_rows, dependent_ids, subtasks
from store.models import Task
from temporal.starts import pipeline_workflow_id, start_task_workflow, task_workflow_id


async def _signal(client: Client, workflow_id: str, signal: str, arg: object) -> None:
    """Tell a workflow something; one that is not running has nothing to hear."""
    try:
        await client.get_workflow_handle(workflow_id).signal(signal, arg)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


class GraphActivities:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions

    @activity.defn
    async def load_graph(self, input: GraphInput) -> GraphSnapshot:
        async with self.sessions() as session:
            deps = await dependency_rows(session, task_id=input.task_id)
            children = await subtasks(session, parent_id=input.task_id)
        failed = next(
            (task.title for _, task in deps if task.state in ("failed", "cancelled")), None
        )
        steps = [c for c in children if c.task_type == "step"]
        return GraphSnapshot(
            dependency_states=[task.state for _, task in deps],
            failed_dependency=failed,
            blocking_open=sum(
                1 for c in children if c.blocks_parent and c.state != TaskState.COMPLETED
            ),
            steps_total=len(steps),
            steps_completed=sum(1 for s in steps if s.state == TaskState.COMPLETED),
        )

    @activity.defn
    async def notify_task_finished(self, input: TaskFinished) -> None:
        """Signals, not polling: dependents, the parent and its pipeline hear at once."""
        async with self.sessions() as session:
            waiting = await dependent_ids(session, task_id=input.task_id)
            task = await session.get(Task, input.task_id)
        client = activity.client()
        for dependent in waiting:
            await _signal(client, task_workflow_id(dependent), Signals.DEPENDENCIES_CHANGED, None)
        if task is not None and task.parent_task_id:
            await _signal(
                client, task_workflow_id(task.parent_task_id), Signals.SUBTASKS_CHANGED, None
            )
            if task.task_type == "step":
                await _signal(
                    client, pipeline_workflow_id(task.parent_task_id), Signals.STEPS_CHANGED, None
                )
        if (
            task is not None
            and input.state == TaskState.COMPLETED
            and (task.metadata_ or {}).get("ticketSource")
        ):
            # The ticket hears in a workflow of its own: its provider may be slow or down.
            await start_ticket_writeback(
                client, task_id=task.id, task_queue=activity.info().task_queue
            )

    @activity.defn
    async def load_steps(self, input: PipelineInput) -> PipelineSteps:
        async with self.sessions() as session:
            children = await subtasks(session, parent_id=input.parent_task_id)
            steps = []
            for child in children:
                if child.task_type != "step":
                    continue
                # Its workflow records task_submitted first; starting it again is a no-op.
                started = child.transition_seq > 0
                steps.append(PipelineStep(task_id=child.id, state=child.state, started=started))
        return PipelineSteps(steps=steps)

    @activity.defn
    async def start_task(self, input: StartTaskInput) -> None:
        async with self.sessions() as session:
            task = await session.get(Task, input.task_id)
        if task is None:
            return
        await start_task_workflow(
            activity.client(),
            task,
            task_queue=activity.info().task_queue,
        )

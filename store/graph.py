"""Queries over the task graph: dependencies, subtasks and pipeline steps."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInputError, NotFoundError
from core.graph import find_cycle
from core.states import TaskState
from store.models import Task, TaskDependency


async def dependency_rows(
    session: AsyncSession, *, task_id: str
) -> list[tuple[TaskDependency, Task]]:
    stmt = (
        select(TaskDependency, Task)
        .join(Task, Task.id == TaskDependency.depends_on_task_id)
        .where(TaskDependency.task_id == task_id)
        .order_by(TaskDependency.created_at)
    )
    return [(dep, task) for dep, task in (await session.execute(stmt)).all()]


async def dependent_ids(session: AsyncSession, *, task_id: str) -> list[str]:
    stmt = select(TaskDependency.task_id).where(TaskDependency.depends_on_task_id == task_id)
    return list((await session.execute(stmt)).scalars())


async def dependents(session: AsyncSession, *, task_id: str) -> list[Task]:
    stmt = (
        select(Task)
        .join(TaskDependency, TaskDependency.task_id == Task.id)
        .where(TaskDependency.depends_on_task_id == task_id)
        .order_by(Task.created_at)
    )
    return list((await session.execute(stmt)).scalars())


async def edges(session: AsyncSession, *, workspace_id: str) -> dict[str, set[str]]:
    stmt = select(TaskDependency.task_id, TaskDependency.depends_on_task_id).where(
        TaskDependency.workspace_id == workspace_id
    )
    graph: dict[str, set[str]] = {}
    for task_id, depends_on in (await session.execute(stmt)).all():
        graph.setdefault(task_id, set()).add(depends_on)
    return graph


async def subtasks(session: AsyncSession, *, parent_id: str) -> list[Task]:
    stmt = (
        select(Task)
        .where(Task.parent_task_id == parent_id)
        .order_by(Task.subtask_order, Task.created_at)
    )
    return list((await session.execute(stmt)).scalars())


async def next_subtask_order(session: AsyncSession, *, parent_id: str) -> int:
    stmt = select(func.max(Task.subtask_order)).where(Task.parent_task_id == parent_id)
    current = (await session.execute(stmt)).scalar_one()
    return 0 if current is None else int(current) + 1


def is_done(state: str) -> bool:
    return state == TaskState.COMPLETED


def has_failed(state: str) -> bool:
    return state in (TaskState.FAILED, TaskState.CANCELLED)


async def add_dependencies(session: AsyncSession, *, task: Task, depends_on_ids: list[str]) -> None:
    """Validate (same workspace, no self, no cycle) and insert; idempotent per pair."""
    wanted = list(dict.fromkeys(depends_on_ids))
    if task.id in wanted:
        raise InvalidInputError("A task cannot depend on itself")
    found = (
        await session.execute(
            select(Task.id).where(Task.id.in_(wanted), Task.workspace_id == task.workspace_id)
        )
    ).scalars()
    missing = set(wanted) - set(found)
    if missing:
        raise NotFoundError(f"Dependency not found: {', '.join(sorted(missing))}")
    cycle = find_cycle(
        await edges(session, workspace_id=task.workspace_id), start=task.id, new_targets=set(wanted)
    )
    if cycle:
        raise InvalidInputError(f"Circular dependency detected: {' -> '.join(cycle)}")
    existing = set(
        (
            await session.execute(
                select(TaskDependency.depends_on_task_id).where(TaskDependency.task_id == task.id)
            )
        ).scalars()
    )
    for target in wanted:
        if target not in existing:
            session.add(
                TaskDependency(
                    workspace_id=task.workspace_id, task_id=task.id, depends_on_task_id=target
                )
            )
    await session.flush()


async def remove_dependency(session: AsyncSession, *, task: Task, depends_on_id: str) -> bool:
    row = (
        await session.execute(
            select(TaskDependency).where(
                TaskDependency.task_id == task.id,
                TaskDependency.depends_on_task_id == depends_on_id,
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return False
    await session.delete(row)
    return True


# A review subtask in one of these still speaks for the PR: a second request returns it.
OPEN_REVIEW_STATES = (
    TaskState.PENDING,
    TaskState.QUEUED,
    TaskState.PROVISIONING,
    TaskState.RUNNING,
    TaskState.NEEDS_ATTENTION,
)


async def open_review_of(session: AsyncSession, *, parent: Task) -> Task | None:
    """The parent's oldest review subtask still under way, with the parent row locked.

    On PostgreSQL the lock makes concurrent requests for a review take turns, so two
    cannot both find none and create one each.
    """
    await session.execute(select(Task.id).where(Task.id == parent.id).with_for_update())
    stmt = select(Task).where(
        Task.parent_task_id == parent.id,
        Task.task_type == "review",
        Task.state.in_(OPEN_REVIEW_STATES),
    )
    return (await session.execute(stmt.order_by(Task.created_at))).scalars().first()


def new_review_subtask(
    session: AsyncSession, *, parent: Task, order: int, created_by: str | None
) -> Task:
    """A review subtask of `parent` that blocks it, added to the session (not flushed).

    Its prompt is a placeholder until its run renders the review template.
    """
    review = Task(
        workspace_id=parent.workspace_id,
        title=f"Review: {parent.title}",
        prompt=f"Review pull request {parent.pr_url}",
        repo_url=parent.repo_url,
        # The reviewer reads the PR's code: its branch is the base of the worktree.
        repo_branch=f"optio/task-{parent.id}",
        state=TaskState.QUEUED,
        agent_type=parent.agent_type,
        task_type="review",
        parent_task_id=parent.id,
        blocks_parent=True,
        subtask_order=order,
        priority=10,
        max_retries=0,
        created_by=created_by,
        metadata_={"reviewOf": parent.id},
    )
    session.add(review)
    return review

"""PR records of the local forge."""

from __future__ import annotations

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import PullRequest


async def find_open_pr(
    session: AsyncSession, *, repo_url: str, head_branch: str
) -> PullRequest | None:
    stmt = select(PullRequest).where(
        PullRequest.repo_url == repo_url,
        PullRequest.head_branch == head_branch,
        PullRequest.state == "open",
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def latest_pr_for_task(session: AsyncSession, *, task_id: str) -> PullRequest | None:
    stmt = (
        select(PullRequest)
        .where(PullRequest.task_id == task_id)
        .order_by(PullRequest.number.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_numbers(session: AsyncSession, *, repo_url: str) -> None:
    """PostgreSQL: the repository's PR numbers are taken one transaction at a time (until
    commit), so concurrent opens do not compute the same next number. SQLite needs no
    lock: the INSERT computing it holds the database's write lock."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(
            select(func.pg_advisory_xact_lock(func.hashtext(f"optio-pr-numbers:{repo_url}")))
        )


def next_number(*, repo_url: str) -> ScalarSelect[int]:
    """The repository's next PR number, computed by the INSERT itself: on SQLite the
    statement holds the write lock while it reads, so concurrent opens cannot both take
    the same number (on PostgreSQL after `lock_numbers`)."""
    return (
        select(func.coalesce(func.max(PullRequest.number), 0) + 1)
        .where(PullRequest.repo_url == repo_url)
        .scalar_subquery()
    )


async def get_pr(session: AsyncSession, *, repo_url: str, number: int) -> PullRequest | None:
    stmt = select(PullRequest).where(PullRequest.repo_url == repo_url, PullRequest.number == number)
    return (await session.execute(stmt)).scalar_one_or_none()

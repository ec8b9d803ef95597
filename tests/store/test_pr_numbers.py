"""Local PR numbers: concurrent opens in one repository each get their own number."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import IntegrityError

from store.db import create_engine, session_factory, transaction
from store.models import PullRequest
from store.pull_requests import lock_numbers, next_number


async def test_concurrent_opens_take_distinct_numbers_without_collisions(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)

    async def open_pr(n: int) -> int:
        async with transaction(sessions) as session:
            await lock_numbers(session, repo_url="/repos/app.git")
            await asyncio.sleep(0)  # other opens run meanwhile
            pr = PullRequest(
                workspace_id="w",
                repo_url="/repos/app.git",
                number=next_number(repo_url="/repos/app.git"),
                head_branch=f"optio/task-{n}",
                base_branch="main",
                title=f"PR {n}",
            )
            session.add(pr)
            await session.flush()
            await session.refresh(pr, attribute_names=["number"])
            await asyncio.sleep(0)  # other opens run meanwhile
            return pr.number

    try:
        # Read under the write lock (SQLite) or the repository's advisory lock (PostgreSQL):
        # no IntegrityError to retry.
        numbers = await asyncio.gather(*(open_pr(n) for n in range(12)))
    except IntegrityError as exc:  # pragma: no cover - the failure this test is about
        pytest.fail(f"two opens took the same number: {exc}")
    finally:
        await engine.dispose()
    assert sorted(numbers) == list(range(1, 13))

"""record_transition's idempotency: once per sequence number, and only from the state
the row is in (a compare-and-set, as the reference's transitionTask)."""

from __future__ import annotations

import uuid

from schemas.workflow import TransitionInput
from store.db import create_engine, session_factory, transaction
from store.models import Task, Workspace
from store.tasks import apply_transition, list_events


async def test_a_step_replayed_under_a_new_number_is_not_written_twice(
    database_url: str,
) -> None:
    """A workflow task that failed after its local activity wrote `queued -> cancelled`
    can take another path when retried and send the same step with the next number."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with transaction(sessions) as session:
            workspace = Workspace(name="w", slug=f"w-{uuid.uuid4().hex[:8]}")
            session.add(workspace)
            await session.flush()
            task = Task(
                workspace_id=workspace.id,
                title="t",
                prompt="p",
                repo_url="/r",
                agent_type="script",
                state="queued",
            )
            session.add(task)
            await session.flush()
            task_id = task.id

        def cancel(seq: int) -> TransitionInput:
            return TransitionInput(
                task_id=task_id,
                seq=seq,
                from_state="queued",
                to_state="cancelled",
                trigger="user_cancel",
            )

        async with transaction(sessions) as session:
            assert await apply_transition(session, data=cancel(1))
        async with transaction(sessions) as session:
            assert not await apply_transition(session, data=cancel(1))  # same number
        async with transaction(sessions) as session:
            assert not await apply_transition(session, data=cancel(2))  # the row moved on
        async with sessions() as session:
            events = await list_events(session, task_id=task_id)
        assert [(e.seq, e.from_state, e.to_state) for e in events] == [(1, "queued", "cancelled")]
    finally:
        await engine.dispose()

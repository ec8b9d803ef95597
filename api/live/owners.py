"""The streams there are, and the row each belongs to (another workspace's is not found)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from api.live.bus import StreamSpec
from api.live.streams import RUN_TERMINAL, TERMINAL, Stream
from core.errors import NotFoundError
from store import live
from store.blueprints import StandaloneRun
from store.scoping import scoped_select
from store.tasks import get_task

LOG_CATCH_UP = 50
EVENTS_CATCH_UP = 20


@dataclass(frozen=True)
class Opened:
    stream: Stream
    # The task or run had already ended: the stream closes after its catch-up.
    ended: bool


async def task_logs(session: AsyncSession, *, workspace_id: str, task_id: str) -> Opened:
    """A task's log entries and its other events (state, PR, comments, messages)."""
    task = await get_task(session, task_id=task_id, workspace_id=workspace_id)
    stream = Stream(
        spec=StreamSpec(workspace_id=workspace_id, topic=live.task_topic(task.id), kind=None),
        catch_up_types=("task:log",),
        catch_up_limit=LOG_CATCH_UP,
        ends_with_owner=True,
    )
    return Opened(stream, ended=task.state in TERMINAL)


async def run_logs(session: AsyncSession, *, workspace_id: str, run_id: str) -> Opened:
    """A standalone task run's log entries and state changes."""
    stmt = scoped_select(StandaloneRun, workspace_id=workspace_id).where(StandaloneRun.id == run_id)
    run = (await session.execute(stmt)).scalar_one_or_none()
    if run is None:
        raise NotFoundError("Workflow run not found")
    stream = Stream(
        spec=StreamSpec(workspace_id=workspace_id, topic=live.run_topic(run.id), kind=None),
        catch_up_types=("workflow_run:log",),
        catch_up_limit=LOG_CATCH_UP,
        ends_with_owner=True,
    )
    return Opened(stream, ended=run.state in RUN_TERMINAL)


def workspace_events(*, workspace_id: str) -> Opened:
    """Everything of the caller's workspace but log entries (those have their streams)."""
    stream = Stream(
        spec=StreamSpec(workspace_id=workspace_id, topic=None, kind=live.EVENT),
        catch_up_types=("task:state_changed",),
        catch_up_limit=EVENTS_CATCH_UP,
        ends_with_owner=False,
    )
    return Opened(stream, ended=False)

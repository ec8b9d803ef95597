"""SessionWorkflow: the life of one interactive session, `session-<id>`.

It makes the session's worktree, then waits: every terminal or chat activity (signal
`touch`) restarts the idle clock; `end` (POST /api/sessions/:id/end) or the idle timeout
ends it, and the worktree goes. Being a workflow, a session outlives worker and API
restarts, and its timeout still fires. A long-lived session continues as new before its
history grows large (each touch is an event).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.sessions import SessionActivities
    from core.names import SESSION_WORKFLOW
    from schemas.sessions import SessionEndInput, SessionInput, SessionRef

MAX_EVENTS_BEFORE_CONTINUE = 2_000
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
    maximum_attempts=20,
)  # fmt: skip


@workflow.defn(name=SESSION_WORKFLOW)
class SessionWorkflow:
    def __init__(self) -> None:
        self._touched = False
        self._ended = False

    @workflow.signal
    def touch(self) -> None:
        self._touched = True

    @workflow.signal
    def end(self) -> None:
        self._ended = True

    @workflow.run
    async def run(self, input: SessionInput) -> str:
        if not input.prepared:
            prepared = await workflow.execute_activity_method(
                SessionActivities.prepare_session,
                SessionRef(session_id=input.session_id),
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=2),
                    maximum_attempts=3,
                    non_retryable_error_types=["SessionGone"],
                ),  # fmt: skip
            )
            if not prepared.ready:
                return await self._finish(input, "failed")
        idle = timedelta(seconds=input.idle_timeout_seconds)
        while not self._ended:
            self._touched = False
            try:
                await workflow.wait_condition(lambda: self._touched or self._ended, timeout=idle)
            except TimeoutError:
                return await self._finish(input, "idle")
            info = workflow.info()
            if not self._ended and (
                info.is_continue_as_new_suggested()
                or info.get_current_history_length() > MAX_EVENTS_BEFORE_CONTINUE
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    SessionInput(input.session_id, input.idle_timeout_seconds, prepared=True)
                )
        return await self._finish(input, "ended")

    async def _finish(self, input: SessionInput, reason: str) -> str:
        await workflow.execute_activity_method(
            SessionActivities.end_session,
            SessionEndInput(session_id=input.session_id, reason=reason),
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RETRY,
        )
        return reason

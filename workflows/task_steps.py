"""What a task's run and its PR phase share: the carried state, the steps that record a
transition, and a person's pending command with its answer.

Both workflows record the task's transitions (compare-and-set on `seq`), so both hold
the same `CarriedState` and hand it to each other whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.pull_requests import PullRequestActivities
    from activities.tasks import TaskActivities
    from core import names
    from core.states import FORCE_RESTARTABLE_STATES, RESUMABLE_STATES, TaskState, can_transition
    from schemas.workflow import (
        CarriedState,
        CommandResult,
        FinishPrInput,
        PrCommand,
        TaskPatch,
        TaskSnapshot,
        TransitionInput,
    )

S = TaskState
STATE_KEY = SearchAttributeKey.for_keyword(names.SA_TASK_STATE)
QUICK = names.QUICK_TIMEOUT
DB_RETRY = RetryPolicy(initial_interval=names.DB_RETRY_INITIAL, maximum_interval=names.DB_RETRY_MAX)
FORGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
ArgT = TypeVar("ArgT")
RetT = TypeVar("RetT")

# Where each command may still be carried out; elsewhere a pending one is answered.
COMMAND_STATES: dict[str, frozenset[TaskState]] = {
    "resume": RESUMABLE_STATES,
    "force_restart": FORCE_RESTARTABLE_STATES,
    "merge": frozenset({S.PR_OPENED}),
}


@dataclass
class Command:
    """A person's accepted command, until it is answered (`done`)."""

    request: PrCommand
    done: bool = False
    result: CommandResult | None = None
    # Being carried out: the transitions it makes are its own, not a reason to refuse it.
    applying: bool = False

    @property
    def kind(self) -> str:
        return self.request.kind

    @property
    def target(self) -> str:
        return S.COMPLETED if self.kind == "merge" else S.QUEUED


def failure_message(err: BaseException) -> str:
    """The innermost message of a Temporal failure chain, for a person to read."""
    while err.__cause__ is not None:
        err = err.__cause__
    return getattr(err, "message", None) or str(err) or type(err).__name__


def invalid(current: str, to_state: str) -> str:
    return f"Invalid state transition: {current} -> {to_state}"


class TaskSteps:
    """Steps of a workflow that moves a task row (state, seq and memory in `_carry`)."""

    _task_id: str
    _carry: CarriedState
    _snap: TaskSnapshot | None
    _command: Command | None
    # The state a transition in flight is recording: the row may already say it, so a
    # command validated meanwhile is judged against it, not the state it leaves.
    _entering: str | None
    # Set by the task's run only: its state is also a search attribute.
    _upserts_state: bool = False

    def _init_steps(self, task_id: str, carry: CarriedState) -> None:
        self._task_id = task_id
        self._carry = carry
        self._snap = None
        self._command = None
        self._entering = None

    @property
    def _state(self) -> str:
        return self._carry.state

    def _require_snap(self) -> TaskSnapshot:
        assert self._snap is not None
        return self._snap

    async def _quick(self, fn: Callable[[Any, ArgT], Awaitable[RetT]], arg: ArgT) -> RetT:
        """A short database step (a few ms), as a local activity: no server round trip."""
        return await workflow.execute_local_activity_method(
            fn, arg, start_to_close_timeout=QUICK, retry_policy=DB_RETRY
        )

    async def _step(
        self,
        fn: Callable[[Any, ArgT], Awaitable[RetT]],
        arg: ArgT,
        *,
        timeout: timedelta,
        retry_policy: RetryPolicy,
    ) -> RetT:
        """A step of seconds at most (open, merge or finish a PR, drop a worktree), local
        too: a worker that dies in it loses its workflow task and the next one runs the
        step again, which each of these steps takes as a no-op when already done."""
        return await workflow.execute_local_activity_method(
            fn, arg, start_to_close_timeout=timeout, retry_policy=retry_policy
        )

    async def _transition(
        self,
        to_state: str,
        trigger: str,
        *,
        message: str | None = None,
        user_id: str | None = None,
        patch: TaskPatch | None = None,
        force: bool = False,
    ) -> None:
        if not force and not can_transition(self._state, to_state):
            raise ApplicationError(
                invalid(self._state, to_state), type="InvalidTransition", non_retryable=True
            )
        self._carry.seq += 1
        self._entering = to_state
        try:
            await self._quick(
                TaskActivities.record_transition,
                TransitionInput(
                    task_id=self._task_id,
                    seq=self._carry.seq,
                    from_state=self._state,
                    to_state=to_state,
                    trigger=trigger,
                    message=message,
                    user_id=user_id,
                    patch=patch or TaskPatch(),
                    force=force,
                ),
            )
        finally:
            self._entering = None
        self._carry.state = to_state
        if self._upserts_state:
            workflow.upsert_search_attributes([STATE_KEY.value_set(to_state)])
        self._drop_stale_command()

    async def _finish_pr(self, *, merged: bool) -> None:
        """Close the linked issue; best effort, a forge outage must not block completion."""
        try:
            await self._step(
                PullRequestActivities.finish_pull_request,
                FinishPrInput(task_id=self._task_id, merged=merged),
                timeout=timedelta(minutes=2),
                retry_policy=FORGE_RETRY,
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            workflow.logger.warning("could not close the linked issue: %s", failure_message(err))

    # ---- a person's command ------------------------------------------------------------

    def _finish(self, command: Command, *, accepted: bool, message: str | None = None) -> None:
        self._answer(command, CommandResult(accepted=accepted, state=self._state, message=message))

    def _answer(self, command: Command, result: CommandResult) -> None:
        command.result = result
        command.done = True
        if self._command is command:
            self._command = None

    def _drop_stale_command(self) -> None:
        """Answer a command the task has moved past (a merge accepted in pr_opened while
        the watch was already resuming the agent): nobody would act on it, and its caller
        would wait forever."""
        command = self._command
        if command is None or command.applying:
            return
        if command.kind == "merge" and self._state == S.COMPLETED:
            self._finish(command, accepted=True)  # merged meanwhile: what was asked is done
        elif self._state not in COMMAND_STATES[command.kind]:
            self._finish(command, accepted=False, message=invalid(self._state, command.target))

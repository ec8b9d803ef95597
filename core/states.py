"""The repo task state machine (inventory §2.1): used by the workflow and by the API."""

from __future__ import annotations

from enum import StrEnum

from core.errors import InvalidTransitionError


class TaskState(StrEnum):
    PENDING = "pending"
    WAITING_ON_DEPS = "waiting_on_deps"
    QUEUED = "queued"
    PROVISIONING = "provisioning"
    RUNNING = "running"
    NEEDS_ATTENTION = "needs_attention"
    PR_OPENED = "pr_opened"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = TaskState

TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    S.PENDING: frozenset({S.QUEUED, S.WAITING_ON_DEPS}),
    S.WAITING_ON_DEPS: frozenset({S.QUEUED, S.FAILED, S.CANCELLED}),
    S.QUEUED: frozenset({S.PROVISIONING, S.CANCELLED, S.FAILED}),
    S.PROVISIONING: frozenset({S.RUNNING, S.FAILED, S.QUEUED}),
    S.RUNNING: frozenset({S.PR_OPENED, S.COMPLETED, S.NEEDS_ATTENTION, S.FAILED, S.CANCELLED}),
    S.NEEDS_ATTENTION: frozenset({S.RUNNING, S.QUEUED, S.CANCELLED}),
    S.PR_OPENED: frozenset({S.COMPLETED, S.NEEDS_ATTENTION, S.FAILED, S.CANCELLED, S.QUEUED}),
    S.FAILED: frozenset({S.QUEUED, S.COMPLETED}),
    S.CANCELLED: frozenset({S.QUEUED}),
    S.COMPLETED: frozenset(),
}

# States in which the task's workflow is still executing.
LIVE_STATES = frozenset(
    {
        S.PENDING,
        S.WAITING_ON_DEPS,
        S.QUEUED,
        S.PROVISIONING,
        S.RUNNING,
        S.NEEDS_ATTENTION,
        S.PR_OPENED,
    }
)
RETRYABLE_STATES = frozenset({S.FAILED, S.CANCELLED})
RESUMABLE_STATES = frozenset({S.NEEDS_ATTENTION, S.FAILED})
FORCE_RESTARTABLE_STATES = frozenset({S.NEEDS_ATTENTION, S.FAILED, S.PR_OPENED})


def can_transition(from_state: str, to_state: str) -> bool:
    return TaskState(to_state) in TRANSITIONS[TaskState(from_state)]


def check_transition(from_state: str, to_state: str) -> None:
    if not can_transition(from_state, to_state):
        raise InvalidTransitionError(from_state, to_state)


def is_terminal(state: str) -> bool:
    return not TRANSITIONS[TaskState(state)]

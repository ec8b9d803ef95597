"""Exit codes of the client commands, one per kind of outcome a script branches on."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    ERROR = 1  # anything not below (a 5xx answer, an unexpected one)
    USAGE = 2  # a wrong command line, or values the API refused (400)
    AUTH = 3  # no token, a token the server refuses (401), a role that may not (403)
    NOT_FOUND = 4  # 404: no such task/repo/secret in this workspace
    CONFLICT = 5  # 409: the task's state refuses the command
    UNREACHABLE = 6  # no answer from the server
    TASK_FAILED = 10  # `task wait`: the task ended failed
    TASK_CANCELLED = 11  # `task wait`: the task was cancelled
    TASK_NEEDS_ATTENTION = 12  # `task wait`: the task waits for a person
    TIMEOUT = 13  # `task wait --timeout` ran out


def for_status(status: int) -> Exit:
    if status in (401, 403):
        return Exit.AUTH
    if status == 404:
        return Exit.NOT_FOUND
    if status == 409:
        return Exit.CONFLICT
    if status in (400, 405, 422):
        return Exit.USAGE
    return Exit.ERROR


class ClientError(Exception):
    """A failure the command reports in one line and exits with."""

    def __init__(self, message: str, code: Exit = Exit.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

"""Domain errors; the API maps each to one status code in one place."""

from __future__ import annotations


class OptioError(Exception):
    status_code = 500

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFoundError(OptioError):
    status_code = 404


class ConflictError(OptioError):
    status_code = 409


class InvalidInputError(OptioError):
    status_code = 400


class UnauthorizedError(OptioError):
    status_code = 401


class ForbiddenError(OptioError):
    status_code = 403


class InvalidTransitionError(ConflictError):
    def __init__(self, from_state: str, to_state: str) -> None:
        super().__init__(f"Invalid state transition: {from_state} -> {to_state}")
        self.from_state = from_state
        self.to_state = to_state


class TooManyRequestsError(OptioError):
    status_code = 429


class ServiceUnavailableError(OptioError):
    status_code = 503

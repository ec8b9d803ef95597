"""The error envelope `{"error": ..., "details": ...}`, defined once for every route."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import OptioError

log = logging.getLogger(__name__)


def error_response(status: int, message: str, details: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status)


def _field_path(loc: tuple[Any, ...]) -> str:
    # Drop the "body"/"query" prefix: people name fields, not request parts.
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path") else list(loc)
    return ".".join(str(p) for p in parts) or "body"


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"field": _field_path(tuple(err.get("loc", ()))), "message": err.get("msg", "invalid")}
        for err in exc.errors()
    ]
    fields = ", ".join(dict.fromkeys(p["field"] for p in problems))
    return error_response(400, f"Invalid fields: {fields}", problems)


async def _domain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OptioError)
    return error_response(exc.status_code, exc.message, exc.details)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail))


async def _database(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if exc.connection_invalidated:
        # The database went away (a restart): the pool has dropped its connections and
        # the next request gets a fresh one.
        log.warning("database connection lost: %s", type(exc.orig).__name__)
        response = error_response(503, "The database connection was lost; try again")
        response.headers["Retry-After"] = "1"
        return response
    return await _unexpected(request, exc)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "Internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(OptioError, _domain)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(Exception, _unexpected)

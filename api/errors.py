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


# Python's json messages, in words a person sending the body can act on.
_JSON_PROBLEMS = (
    (
        "Expecting value",
        "expected a JSON value (object, array, string, number, true, false or null)",
    ),
    (
        "Expecting property name enclosed in double quotes",
        "expected a property name in double quotes",
    ),
    ("Expecting ',' delimiter", "expected ',' between values or the end of the object or array"),
    ("Expecting ':' delimiter", "expected ':' after the property name"),
    ("Unterminated string", "a string is not closed (expected '\"')"),
    (
        "Invalid control character",
        "a raw control character inside a string (expected it escaped, e.g. \\n)",
    ),
    ("Invalid \\uXXXX escape", "expected 4 hex digits after \\u"),
    (
        "Invalid \\escape",
        'an invalid escape sequence in a string (expected \\" \\\\ / b f n r t or uXXXX)',
    ),
    ("Extra data", "expected the end of the body after the JSON value"),
)


def json_problem(doc: Any, pos: int, reason: str) -> str:
    """`line 1, column 12: expected ...` for a body that is not JSON."""
    text = doc.decode("utf-8", "replace") if isinstance(doc, bytes) else str(doc or "")
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    words = next((w for key, w in _JSON_PROBLEMS if reason.startswith(key)), reason)
    return f"line {line}, column {column}: {words}"


def _problem(err: dict[str, Any], body: Any) -> dict[str, str]:
    if err.get("type") == "json_invalid":
        loc = err.get("loc", ())
        pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
        reason = str(err.get("ctx", {}).get("error", "invalid JSON"))
        return {"field": "body", "message": f"Malformed JSON: {json_problem(body, pos, reason)}"}
    if tuple(err.get("loc", ())) == ("body",) and isinstance(err.get("input"), bytes):
        # A body FastAPI did not parse as JSON: the Content-Type was not application/json.
        return {
            "field": "body",
            "message": "expected a JSON body sent with 'Content-Type: application/json'",
        }
    return {"field": _field_path(tuple(err.get("loc", ()))), "message": err.get("msg", "invalid")}


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_problem(err, exc.body) for err in exc.errors()]
    if len(problems) == 1 and problems[0]["message"].startswith("Malformed JSON"):
        return error_response(400, problems[0]["message"], problems)
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

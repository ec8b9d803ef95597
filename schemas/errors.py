"""The error envelope every route answers with: `{"error": ..., "details": ...}`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FieldProblem(BaseModel):
    field: str = Field(description="the request field, camelCase; `body` for the body as a whole")
    message: str


class ErrorPublic(BaseModel):
    """What a 4xx or 5xx carries. On 400 `details` lists the problems field by field."""

    error: str = Field(description="a message a person can act on")
    details: list[FieldProblem] | dict[str, Any] | list[Any] | str | None = None

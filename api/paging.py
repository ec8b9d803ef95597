"""Pagination query parameters, bounded so a number never reaches the database unchecked.

An offset past what a 64-bit signed integer holds made PostgreSQL and SQLite fail
with a 500; the bound is far above any real page and well inside every engine's range.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

MAX_OFFSET = 1_000_000_000

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"rows to skip, 0..{MAX_OFFSET}")]

# Event ids are the database's 64-bit keys: a larger number can name no event.
MAX_EVENT_ID = 2**63 - 1

LastEventId = Annotated[
    int | None,
    Query(alias="lastEventId", ge=0, le=MAX_EVENT_ID, description="resume after this event id"),
]

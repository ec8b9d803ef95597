"""Rows read as plain dicts keyed by the model's attribute names, without ORM objects.

A read-only answer (a page of tasks, one task, the repositories) validated by a pydantic
model needs no identity-map entry, instrumentation or unit of work per row: those cost
more than the query on SQLite. Statements are built once, at import, with bind
parameters: a statement made per call spends more on its cache key than SQLite on the
query.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Label
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable


def attribute_columns(model: type[Any]) -> list[Label[Any]]:
    """Every column of the model's table, labelled with its attribute name (`metadata_`)."""
    table = model.__table__
    return [
        table.c[column.name].label(attr.key)
        for attr in model.__mapper__.column_attrs
        for column in attr.columns
    ]


# A read takes a session or, cheaper, a bare connection (api/deps.py `ReadDep`).
Reader = AsyncSession | AsyncConnection


async def fetch_dicts(
    reader: Reader, stmt: Executable, params: dict[str, Any]
) -> list[dict[str, Any]]:
    result = await reader.execute(stmt, params)
    keys = tuple(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]

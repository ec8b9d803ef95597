"""Applying a PATCH body to a row: `null` clears a field only where the column may be empty.

Without this, `{"enabled": null}` reached a NOT NULL column and failed at commit with a 500.
"""

from __future__ import annotations

from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy import inspect

from core.errors import InvalidInputError


def apply_changes(
    row: Any, changes: dict[str, Any], *, columns: dict[str, str] | None = None
) -> None:
    """Set each change on the row; 400 naming the fields that cannot be null.

    `columns` maps a field name to its attribute when they differ (`metadata` ->
    `metadata_`)."""
    columns = columns or {}
    mapper = inspect(type(row))
    refused = [
        name
        for name, value in changes.items()
        if value is None
        and (attr := mapper.attrs.get(columns.get(name, name))) is not None
        and not all(column.nullable for column in getattr(attr, "columns", ()))
    ]
    if refused:
        fields = [to_camel(name) for name in refused]
        raise InvalidInputError(
            f"Invalid fields: {', '.join(fields)}",
            details=[{"field": f, "message": "must not be null"} for f in fields],
        )
    for name, value in changes.items():
        setattr(row, columns.get(name, name), value)

"""A page of rows answered as a response model's JSON, without a model instance per row.

`GET /api/tasks` reads 50 rows as dicts keyed by attribute name (store/row_dicts.py).
Validating them into 50 `TaskPublic`s and dumping those cost twice what dumping the
values does (docs/benchmarks.md, third pass): the rows already hold the types the model
declares (the columns' own: str, int, bool, dict, UTC datetimes). Here each row is
re-keyed by the model's JSON names, in the model's field order, with the model's
defaults for the fields no column holds, and the page is dumped by pydantic_core in one
call: the same bytes FastAPI writes for the model (tests/api/test_row_json.py).

The route still declares the model as its `response_model`, for the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Response
from pydantic import BaseModel
from pydantic_core import PydanticUndefined, to_json

_MISSING = object()


class RowJson:
    def __init__(self, model: type[BaseModel], columns: Iterable[str]) -> None:
        """`columns`: the keys of the rows (a statement's labels). A field of the model
        is read from its attribute's column (or its validation alias: `metadata_`);
        one without a column must have a default."""
        available = set(columns)
        self.fields: list[tuple[str, str, Any]] = []
        for name, info in model.model_fields.items():
            alias = info.alias or name
            explicit = info.validation_alias if info.validation_alias != info.alias else None
            source = explicit if isinstance(explicit, str) else name
            if source in available:
                self.fields.append((source, alias, _MISSING))
            elif info.default is not PydanticUndefined:
                self.fields.append((source, alias, info.default))
            else:
                raise ValueError(f"{model.__name__}.{name}: no column and no default")

    def objects(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        fields = self.fields
        return [
            {
                alias: row[source] if default is _MISSING else default
                for source, alias, default in fields
            }
            for row in rows
        ]


def json_response(content: dict[str, Any]) -> Response:
    """What FastAPI's default response class writes for a model, from plain values."""
    return Response(content=to_json(content), media_type="application/json")

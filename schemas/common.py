from __future__ import annotations

import json
import types
from pathlib import PurePosixPath
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

METADATA_MAX_BYTES = 64 * 1024


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are refused.

    Booleans and integers are strict: `"yes"`, `0`/`1` for a boolean and `true` or
    `"5"` for an integer are refused, not coerced (a client that sends them has a bug
    a silent coercion would hide).
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", from_attributes=True
    )

    @field_validator("*", mode="before")
    @classmethod
    def _strict_scalars(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or info.field_name is None:
            return value
        kind = _scalar_kind(cls.model_fields[info.field_name].annotation)
        if kind is bool and not isinstance(value, bool):
            raise ValueError("must be true or false")
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError("must be a whole number")
        return value


def _scalar_kind(annotation: Any) -> type | None:
    """bool or int when the field is one of those, optional or not."""
    if annotation is bool or annotation is int:
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        if len(inner) == 1 and (inner[0] is bool or inner[0] is int):
            return inner[0]
    return None


class ApiOut(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


def _metadata_size(value: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {METADATA_MAX_BYTES} are kept")
    return value


# Free-form client data kept on a row: any JSON object, up to 64 KiB.
Metadata = Annotated[dict[str, Any], AfterValidator(_metadata_size)]


def relative_inside(value: str) -> str:
    """A relative path that stays inside the folder it is relative to."""
    path = PurePosixPath(value)
    if value.startswith(("/", "~")) or "\\" in value or path.is_absolute():
        raise ValueError("must be a relative path (no leading /, ~ or backslashes)")
    if any(part in ("..", ".", "") for part in value.split("/")):
        raise ValueError("must not contain '..', '.' or empty segments")
    return value

"""The JSON Schema subset a standalone task's `paramsSchema` may use, and checking params.

Supported keywords: type (string, number, integer, boolean, object, array, null, or a
list of them), properties, required, additionalProperties (bool), enum, minimum,
maximum, minLength, maxLength, items. Anything else is ignored, as validators do
with unknown keywords.
"""

from __future__ import annotations

from typing import Any

TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


class ParamsError(ValueError):
    pass


def check_schema(schema: dict[str, Any]) -> None:
    """Refuse a schema we would not know how to apply."""
    kinds = schema.get("type", "object")
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        if kind not in TYPES:
            raise ParamsError(f"paramsSchema: unknown type {kind!r}")
    props = schema.get("properties", {})
    if not isinstance(props, dict) or not all(isinstance(v, dict) for v in props.values()):
        raise ParamsError("paramsSchema: properties must map names to schemas")
    for sub in props.values():
        check_schema(sub)
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ParamsError("paramsSchema: required must be a list of names")


def validate_params(schema: dict[str, Any] | None, params: dict[str, Any]) -> None:
    if schema:
        problems = _problems(schema, params, "params")
        if problems:
            raise ParamsError("; ".join(problems))


def _is(value: Any, kind: str) -> bool:
    # bool is an int in Python, never a number in JSON.
    if kind in ("number", "integer") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, TYPES[kind])


def _problems(schema: dict[str, Any], value: Any, where: str) -> list[str]:
    kinds = schema.get("type")
    if kinds is not None:
        allowed = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is(value, k) for k in allowed):
            return [f"{where} must be {' or '.join(allowed)}"]
    out: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where} must be one of {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{where} must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{where} must be <= {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(f"{where} must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"{where} must have at most {schema['maxLength']} characters")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out += _problems(schema["items"], item, f"{where}[{i}]")
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                out.append(f"{where}.{name} is required")
        for name, item in value.items():
            if name in props:
                out += _problems(props[name], item, f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{where}.{name} is not allowed")
    return out

"""Every operation documents a typed success: a named model (or a union of them) for a
JSON answer, the event model of a server-sent stream, nothing for a 204 or a redirect.

An untyped answer (`{}`, or a free-form object, which is what FastAPI writes for a route
that returns a plain dict) would leave a client with nothing to parse into (issue 18).
"""

from __future__ import annotations

from typing import Any

from api.main import create_app

NO_BODY = {"204", "301", "302", "303", "307", "308"}


def _typed(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """A model with properties, a union or list of typed schemas, or a scalar."""
    if "$ref" in schema:
        return _typed(components[schema["$ref"].rsplit("/", 1)[1]], components)
    for union in ("oneOf", "anyOf"):
        if union in schema:
            options = [s for s in schema[union] if s.get("type") != "null"]
            return bool(options) and all(_typed(s, components) for s in options)
    if "allOf" in schema:
        return any(_typed(s, components) for s in schema["allOf"])
    kind = schema.get("type")
    if kind == "array":
        return _typed(schema.get("items", {}), components)
    if kind == "object":
        return bool(schema.get("properties"))
    return kind in ("string", "integer", "number", "boolean")


def untyped_operations(document: dict[str, Any]) -> list[str]:
    components = document.get("components", {}).get("schemas", {})
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            name = f"{method.upper()} {path}"
            successes = {
                code: response
                for code, response in operation["responses"].items()
                if code.startswith(("2", "3"))
            }
            if not successes:
                found.append(f"{name}: no 2xx or 3xx response")
            for code, response in successes.items():
                content = response.get("content")
                if not content:
                    if code not in NO_BODY:
                        found.append(f"{name} {code}: no content")
                    continue
                if code.startswith("3") and "Location" not in response.get("headers", {}):
                    found.append(f"{name} {code}: a redirect without its Location")
                for media, body in content.items():
                    if not _typed(body.get("schema", {}), components):
                        found.append(f"{name} {code} {media}: untyped {body.get('schema')}")
    return found


def test_every_operation_documents_a_typed_success() -> None:
    assert untyped_operations(create_app().openapi()) == []


def test_an_untyped_answer_is_found() -> None:
    """The check above would catch what FastAPI writes for a route returning a dict."""
    responses = {
        "/a": {"200": {"content": {"application/json": {"schema": {}}}}},
        "/b": {"201": {"content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": True}}}}},
        "/c": {"200": {"content": {"text/event-stream": {"schema": {"type": "object"}}}}},
        "/d": {"302": {"description": "moved"}},
        "/e": {"400": {"content": {"application/json": {"schema": {"type": "string"}}}}},
        "/f": {"200": {"content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Named"}}}}},
    }  # fmt: skip
    document = {
        "paths": {p: {"get": {"responses": r}} for p, r in responses.items()},
        "components": {"schemas": {"Named": {"type": "object", "properties": {"id": {}}}}},
    }
    assert untyped_operations(document) == [
        "GET /a 200 application/json: untyped {}",
        "GET /b 201 application/json: untyped {'type': 'object', 'additionalProperties': True}",
        "GET /c 200 text/event-stream: untyped {'type': 'object'}",
        "GET /e: no 2xx or 3xx response",
    ]

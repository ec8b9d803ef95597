"""The OpenAPI document as a contract: every route lists the error codes it answers.

The status codes come from what the app really does, decided in one place:
400 for bad input on any route (validation, and the NUL-byte middleware that sees every
request), 401 and 403 from authentication and the role policy (api/roles.py), 404 for
a route about one row, 409 for a write that goes through the state machine, a budget
or a uniqueness check, 503 when the database or Temporal is unreachable. FastAPI's
default 422 is dropped: the API answers 400 for validation (api/errors.py).
"""

from __future__ import annotations

import inspect
import re
import sys
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter

from api.roles import is_public, minimum_role
from core.errors import ConflictError
from schemas.errors import ErrorPublic

NAMES_A_ROW = re.compile(r"(id|email)$", re.IGNORECASE)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DESCRIPTIONS = {
    400: "Invalid input: `error` names the fields, `details` lists `{field, message}`",
    401: "No credential, or an invalid or expired one",
    403: "The caller's role in this workspace does not allow this",
    404: "Not found, or not in the caller's workspace",
    409: "Refused in the current state (a transition, a budget, a name already taken)",
    503: "The database or Temporal is unreachable; retry (Retry-After)",
}


def _imports_conflict(module: object) -> bool:
    return any(
        isinstance(value, type) and issubclass(value, ConflictError)
        for value in vars(module).values()
    )


def _raises_conflicts(route: APIRoute) -> bool:
    """The route's module, or a module whose helpers it calls, raises a 409 (an invalid
    transition, a spent budget, a name already taken)."""
    module = sys.modules.get(route.endpoint.__module__)
    if module is None:
        return False
    if _imports_conflict(module):
        return True
    for value in vars(module).values():
        name = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        used = sys.modules.get(name) if isinstance(name, str) else None
        if used is not None and name != module.__name__ and _imports_conflict(used):
            return True
    return False


def error_codes(route: APIRoute) -> list[int]:
    methods = route.methods or set()
    codes = [400]
    public = all(is_public(m, route.path) for m in methods)
    # Public receivers (forge and Slack webhooks, runners' ingest) check a signature or a
    # run token instead: a 401 too. Only the public reads need no credential at all.
    if not public or methods - {"GET", "HEAD"}:
        codes.append(401)
    if not public and any(minimum_role(m, route.path) not in (None, "viewer") for m in methods):
        codes.append(403)
    # A row named in the path, the query or the body that is not there (or not in the
    # caller's workspace).
    if (
        route.dependant.path_params
        or route.body_field
        or any(NAMES_A_ROW.search(q.alias) for q in route.dependant.query_params)
    ):
        codes.append(404)
    if methods & WRITE_METHODS and _raises_conflicts(route):
        codes.append(409)
    codes.append(503)
    return codes


def declare_errors(route: APIRoute, extra: tuple[int, ...] = ()) -> None:
    for code in sorted({*error_codes(route), *extra}):
        route.responses.setdefault(
            code, {"model": ErrorPublic, "description": DESCRIPTIONS.get(code, "Error")}
        )


REF_TEMPLATE = "#/components/schemas/{model}"
BODY_KEY = "x-optio-body"
# Request bodies a route validates itself (a kind picked by `type`, or by the row it
# changes): their schema goes into the document, and its models into the components.
_BODY_MODELS: list[Any] = []


def request_body(
    annotation: Any,
    *,
    description: str | None = None,
    discriminator: dict[str, type[BaseModel]] | None = None,
) -> dict[str, Any]:
    """`openapi_extra` declaring the JSON body of a route that validates it by hand;
    `discriminator` maps the values of `type` to the union's models."""
    _BODY_MODELS.append(annotation)
    schema = TypeAdapter(annotation).json_schema(
        ref_template=REF_TEMPLATE, mode="validation", by_alias=True
    )
    schema.pop("$defs", None)
    if discriminator is not None:
        schema = {
            "oneOf": schema.pop("anyOf"),
            "discriminator": {
                "propertyName": "type",
                "mapping": {
                    value: REF_TEMPLATE.format(model=model.__name__)
                    for value, model in discriminator.items()
                },
            },
            **schema,
        }
    body: dict[str, Any] = {"required": True, "content": {"application/json": {}}}
    if description:
        body["description"] = description
    # Replaces FastAPI's own (an untyped object) when the document is built.
    return {"requestBody": body, BODY_KEY: schema}


def _body_definitions() -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    for annotation in _BODY_MODELS:
        schema = TypeAdapter(annotation).json_schema(
            ref_template=REF_TEMPLATE, mode="validation", by_alias=True
        )
        definitions.update(schema.get("$defs", {}))
    return definitions


# Create -> read -> update -> delete, for Schemathesis' stateful phase and for clients:
# (create path, key of the created row in the answer, item path, its id parameter).
RESOURCES = (
    ("/api/tasks", "task", "/api/tasks/{task_id}", "task_id"),
    ("/api/repos", "repo", "/api/repos/{repo_id}", "repo_id"),
    ("/api/webhooks", "webhook", "/api/webhooks/{webhook_id}", "webhook_id"),
    ("/api/mcp-servers", "server", "/api/mcp-servers/{server_id}", "server_id"),
    ("/api/skills", "skill", "/api/skills/{skill_id}", "skill_id"),
    ("/api/tasks/{task_id}/triggers", "trigger", "/api/tasks/{task_id}/triggers/{trigger_id}",
     "trigger_id"),
)  # fmt: skip


def _add_links(paths: dict[str, Any]) -> None:
    """OpenAPI links from each create to the operations on the row it made, and on its
    sub-resources (a task's events, logs, triggers...)."""
    for create_path, key, item_path, param in RESOURCES:
        created = paths.get(create_path, {}).get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        links = created.setdefault("links", {})
        for path, item in paths.items():
            if not path.startswith(item_path):
                continue
            for method, operation in item.items():
                parameters = {param: f"$response.body#/{key}/id"}
                for name in ("task_id",):  # an id the create itself was called with
                    if f"{{{name}}}" in create_path:
                        parameters[name] = f"$request.path.{name}"
                links[f"{method}{operation['operationId']}"] = {
                    "operationId": operation["operationId"],
                    "parameters": parameters,
                }


def _stream_schemas(responses: dict[str, Any]) -> None:
    """A server-sent event stream's schema is that of each event's `data:` (a model):
    FastAPI also leaves the `type: string` of a text response beside the model's $ref.
    It files every response of the route under the stream's media type, yet its errors
    are the JSON envelope."""
    for code, response in responses.items():
        content = response.get("content", {})
        if "text/event-stream" not in content:
            continue
        if code.startswith(("4", "5")):
            content["application/json"] = content.pop("text/event-stream")
            continue
        schema = content["text/event-stream"].get("schema", {})
        if "$ref" in schema:
            schema.pop("type", None)


def declare_router_errors(router: APIRouter) -> None:
    """Called before the app includes the router: FastAPI builds the included routes
    (and their response fields) from the router's own routes."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            declare_errors(route)


def install_contract(app: FastAPI) -> None:
    """Serve a document without FastAPI's default 422: the API answers 400."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
                    _stream_schemas(operation.get("responses", {}))
                    if BODY_KEY in operation:
                        content = operation["requestBody"]["content"]["application/json"]
                        content["schema"] = operation.pop(BODY_KEY)
            _add_links(document.get("paths", {}))
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in _body_definitions().items():
                schemas.setdefault(name, definition)
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

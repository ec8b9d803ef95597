"""What the sweeps need: the routes from the OpenAPI document, bodies, seeds and ids."""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from api.main import create_app

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PARAM = re.compile(r"\{([^}]+)\}")
WRITES = ("post", "put", "patch", "delete")


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    body: dict[str, Any] | None

    @property
    def params(self) -> list[str]:
        return PARAM.findall(self.path)

    def url(self, values: list[str]) -> str:
        it = iter(values)
        return PARAM.sub(lambda _: next(it), self.path)


def operations() -> list[Op]:
    """Every documented operation, with a body built from its schema's required fields."""
    spec = create_app().openapi()
    schemas = spec.get("components", {}).get("schemas", {})
    ops = []
    for path, methods in sorted(spec["paths"].items()):
        for method, op in sorted(methods.items()):
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            body = example(content["schema"], schemas) if content else None
            ops.append(Op(method=method.upper(), path=path, body=body))
    return ops


def example(schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> Any:
    if "$ref" in schema:
        return example(schemas[schema["$ref"].rsplit("/", 1)[-1]], schemas, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return example(options[0], schemas, depth + 1) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: example(props[k], schemas, depth + 1) for k in schema.get("required", [])}
    if kind == "array":
        item = example(schema.get("items", {}), schemas, depth + 1)
        return [item] * max(schema.get("minItems", 0), 0)
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2099-01-01T00:00:00Z"
        for candidate in ("sweep", "SWEEP", "sweep-1", "x" * schema.get("minLength", 1)):
            if not schema.get("pattern") or re.fullmatch(schema["pattern"], candidate):
                return candidate
        return "x"
    if kind == "integer":
        return int(schema.get("minimum", 1))  # the document may write it as 1.0
    if kind == "number":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return {}


async def ok(response: httpx.Response, *codes: int) -> dict[str, Any]:
    assert response.status_code in (codes or (200, 201)), (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    return body


async def seed(client: httpx.AsyncClient, repo: Path, canary: str) -> dict[str, str]:
    """One of every kind of row a workspace owns, each named with the canary."""
    out: dict[str, str] = {}
    repo_row = await ok(await client.post("/api/repos", json={"repoUrl": str(repo)}), 201)
    out["repo"] = repo_row["repo"]["id"]
    task = {
        "title": canary,
        "prompt": f"echo {canary}",
        "repoUrl": str(repo),
        "agentType": "script",
    }
    out["task"] = (await ok(await client.post("/api/tasks", json=task), 201))["task"]["id"]
    comment = await client.post(f"/api/tasks/{out['task']}/comments", json={"content": canary})
    out["comment"] = (await ok(comment, 201))["comment"]["id"]
    job = {"type": "standalone", "name": canary, "prompt": "echo hi", "agentType": "script"}
    out["job"] = (await ok(await client.post("/api/tasks", json=job), 201))["task"]["id"]
    trigger = await client.post(
        f"/api/tasks/{out['job']}/triggers",
        json={"type": "webhook", "config": {"path": canary.lower(), "secret": "a-hook-secret"}},
    )
    out["trigger"] = (await ok(trigger, 201))["trigger"]["id"]
    blueprint = {
        "type": "repo-blueprint",
        "name": canary,
        "prompt": "echo hi",
        "repoUrl": str(repo),
        "agentType": "script",
    }
    out["blueprint"] = (await ok(await client.post("/api/tasks", json=blueprint), 201))["task"][
        "id"
    ]
    template = await client.post("/api/task-templates", json={"name": canary, "prompt": "p"})
    out["task_template"] = (await ok(template, 201))["template"]["id"]
    prompt = await client.post("/api/prompt-templates", json={"name": canary, "template": "t"})
    out["prompt_template"] = (await ok(prompt, 201))["template"]["id"]
    mcp = await client.post("/api/mcp-servers", json={"name": canary.lower(), "command": "true"})
    out["mcp_server"] = (await ok(mcp, 201))["server"]["id"]
    skill = await client.post("/api/skills", json={"name": canary.lower(), "prompt": canary})
    out["skill"] = (await ok(skill, 201))["skill"]["id"]
    secret = {"name": f"{canary}_SECRET", "value": canary}
    await ok(await client.post("/api/secrets", json=secret), 201)
    # An interactive session (no worker runs in the sweeps: it stays provisioning).
    session = await client.post("/api/sessions", json={"repoUrl": str(repo)})
    out["session"] = (await ok(session, 201))["session"]["id"]
    key = await client.post("/api/auth/api-keys", json={"name": canary})
    out["api_key"] = (await ok(key, 201))["tokenId"]
    return out


async def crawl(client: httpx.AsyncClient, ops: list[Op], seeds: dict[str, str]) -> dict[str, str]:
    """GET every list route and every detail route of the seeds: url -> body text."""
    seen: dict[str, str] = {}
    for op in ops:
        if op.method != "GET":
            continue
        urls = [op.path] if not op.params else []
        if len(op.params) == 1:
            urls = [op.url([v]) for v in seeds.values()]
        for url in urls:
            status, text = await get_briefly(client, url)
            if status == 200:
                seen[url] = text
    return seen


async def get_briefly(client: httpx.AsyncClient, url: str) -> tuple[int, str]:
    """The body of a GET; of a live stream (SSE), its events of the first moment."""
    async with client.stream("GET", url) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            return response.status_code, (await response.aread()).decode()
        lines: list[str] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                async for line in response.aiter_lines():
                    if line.startswith("data:"):  # not the pings, which carry the time
                        lines.append(line)
        return response.status_code, "\n".join(lines)


def uuids(texts: dict[str, str]) -> set[str]:
    return {m for text in texts.values() for m in UUID.findall(text)}

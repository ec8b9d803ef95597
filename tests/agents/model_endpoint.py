"""A scripted model endpoint on loopback: Anthropic Messages, OpenAI Responses, Gemini API.

The real CLIs talk to it as to the vendor's API: `claude`, `copilot` (BYOK Anthropic
provider) and `opencode` (its Anthropic provider) the Messages API, `codex` the
Responses API, `gemini` the Gemini API's generateContent / streamGenerateContent. It is stateless:
every answer is derived from the request (the latest user prompt, the tool calls and
results so far), so a resumed session continues exactly where the history says.

The script, in order, for one user prompt:
1. the prompt mentions `.optio/task.md` and it was not read yet -> read it with a tool;
2. the instructions (prompt + tool results) ask `Create the file NAME containing "TEXT"`
   for a NAME not yet written in the whole conversation -> write it (Claude: Write tool,
   Codex: apply_patch);
3. the instructions say `loop forever` -> run a harmless shell command, every time;
4. otherwise -> a final text answer.
An API key "invalid-key" is answered with 401 in each vendor's documented error shape;
"server-error-key" with 500.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import free_port

CREATE = re.compile(r'Create the file (\S+) containing "([^"]*)"')
TASK_FILE = ".optio/task.md"
INVALID_KEY = "invalid-key"
# Answered with 500, as an overloaded or broken provider does.
FAILING_KEY = "server-error-key"
IN_TOKENS, OUT_TOKENS = 100, 20  # reported per request


@dataclass
class Plan:
    kind: str  # read | write | loop | done
    name: str = ""
    content: str = ""
    text: str = ""


def plan(*, prompt: str, turn_results: list[str], written: set[str], read_done: bool) -> Plan:
    instructions = "\n".join([prompt, *turn_results])
    if TASK_FILE in prompt and not read_done:
        return Plan("read")
    for name, content in CREATE.findall(instructions):
        if name not in written:
            return Plan("write", name=name, content=content + "\n")
    if "loop forever" in instructions:
        return Plan("loop")
    names = ", ".join(sorted(written)) or "nothing"
    return Plan("done", text=f"All done: wrote {names}.")


@dataclass
class Endpoint:
    """Serves both APIs; `requests` records every request body for assertions."""

    port: int = field(default_factory=free_port)
    requests: list[dict[str, Any]] = field(default_factory=list)
    hang: bool = False  # accept requests and never answer (for the stall detector)
    # Shell commands to run first, once each per conversation, with the CLI's shell tool.
    commands: list[str] = field(default_factory=list)
    _server: uvicorn.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        routes = [
            Route("/v1/messages", self._anthropic, methods=["POST"]),
            Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
            Route("/v1/responses", self._openai, methods=["POST"]),
            Route("/responses", self._openai, methods=["POST"]),
            Route("/v1beta/models/{call:str}", self._gemini, methods=["POST"]),
            Route("/{rest:path}", self._catch_all, methods=["GET", "HEAD", "POST"]),
        ]
        config = uvicorn.Config(
            Starlette(routes=routes), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        threading.Thread(target=self._server.run, daemon=True).start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("model endpoint did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    def api_requests(self, api: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["api"] == api]

    async def _catch_all(self, request: Request) -> Response:
        return JSONResponse({})

    async def _count_tokens(self, request: Request) -> Response:
        return JSONResponse({"input_tokens": IN_TOKENS})

    async def _record(self, request: Request, api: str, key: str | None) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        self.requests.append({"api": api, "key": key, "body": body})
        return body

    # ---- Anthropic Messages API -------------------------------------------------------

    async def _anthropic(self, request: Request) -> Response:
        key = request.headers.get("x-api-key")
        body = await self._record(request, "anthropic", key)
        if key == INVALID_KEY:
            error = {"type": "authentication_error", "message": "invalid x-api-key"}
            return JSONResponse({"type": "error", "error": error}, status_code=401)
        if key == FAILING_KEY:
            error = {"type": "api_error", "message": "Internal server error"}
            return JSONResponse({"type": "error", "error": error}, status_code=500)
        if self.hang:
            return StreamingResponse(_forever(), media_type="text/event-stream")
        command = self._next_command(body)
        if command is not None:
            tool = {"name": "Bash", "input": {"command": command, "description": "As asked"}}
            blocks: list[dict[str, Any]] = [
                {"type": "text", "text": "Running the command."},
                {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", **tool},
            ]
            stop = "tool_use"
        else:
            blocks, stop = _anthropic_turn(body)
        message = {
            "id": f"msg_{uuid.uuid4().hex[:20]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude"),
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": IN_TOKENS,
                "output_tokens": OUT_TOKENS,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        if not body.get("stream"):  # the CLI's fallback after a broken stream
            return JSONResponse(message)
        return StreamingResponse(_anthropic_sse(message), media_type="text/event-stream")

    def _next_command(self, body: dict[str, Any]) -> str | None:
        issued = {
            block["input"].get("command")
            for m in body.get("messages", [])
            if m.get("role") == "assistant" and not isinstance(m.get("content"), str)
            for block in m["content"]
            if block.get("type") == "tool_use"
        }
        return next((c for c in self.commands if c not in issued), None)

    # ---- OpenAI Responses API ---------------------------------------------------------

    async def _openai(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ") or None
        body = await self._record(request, "openai", key)
        if key == INVALID_KEY:
            error = {"message": "Incorrect API key provided", "type": "invalid_request_error"}
            return JSONResponse({"error": {**error, "code": "invalid_api_key"}}, status_code=401)
        if key == FAILING_KEY:
            error = {
                "message": "The server had an error processing your request",
                "type": "server_error",
            }
            return JSONResponse({"error": {**error, "code": None}}, status_code=500)
        if self.hang:
            return StreamingResponse(_forever(), media_type="text/event-stream")
        item = _openai_turn(body)
        return StreamingResponse(_openai_sse(item), media_type="text/event-stream")

    # ---- Gemini API (generativelanguage v1beta) ---------------------------------------------

    async def _gemini(self, request: Request) -> Response:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        body = await self._record(request, "gemini", key)
        model, _, method = request.path_params["call"].partition(":")
        body["model"] = model
        if key == INVALID_KEY:
            error = {
                "code": 401,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "UNAUTHENTICATED",
            }
            return JSONResponse({"error": error}, status_code=401)
        if self.hang:
            return StreamingResponse(_forever(), media_type="text/event-stream")
        config = body.get("generationConfig") or {}
        if config.get("responseMimeType") == "application/json":
            # The CLI's own side calls (model routing, next-speaker check) ask for JSON.
            schema = config.get("responseJsonSchema") or config.get("responseSchema") or {}
            parts = [{"text": json.dumps(_fill(schema))}]
        else:
            parts = _gemini_turn(body)
        chunk = {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": IN_TOKENS,
                "candidatesTokenCount": OUT_TOKENS,
                "totalTokenCount": IN_TOKENS + OUT_TOKENS,
            },
            "modelVersion": model,
            "responseId": uuid.uuid4().hex,
        }
        if method == "streamGenerateContent":
            return StreamingResponse(_gemini_sse(chunk), media_type="text/event-stream")
        return JSONResponse(chunk)


async def _forever() -> AsyncIterator[bytes]:
    import asyncio

    while True:
        await asyncio.sleep(3600)
        yield b""


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


# ---- the Anthropic side of the script ---------------------------------------------------


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    out = []
    for block in content or []:
        if block.get("type") == "text":
            out.append(block["text"])
        elif block.get("type") == "tool_result":
            out.extend(_texts(block.get("content")))
    return out


@dataclass(frozen=True)
class ToolSet:
    """How one CLI names its read, write and shell tools and their parameters."""

    read: str
    write: str
    shell: str
    path: str
    content: str


# Claude Code, Copilot CLI, OpenCode (the first is the default).
_TOOLSETS = (
    ToolSet("Read", "Write", "Bash", "file_path", "content"),
    ToolSet("view", "create", "bash", "path", "file_text"),
    ToolSet("read", "write", "bash", "filePath", "content"),
)


def _anthropic_turn(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    messages = [m for m in body.get("messages", []) if m.get("role") in ("user", "assistant")]
    # The prompt is the last text block of the last user message that is not only tool
    # results (the first block is a <system-reminder>).
    start = max(
        (
            i
            for i, m in enumerate(messages)
            if m["role"] == "user"
            and (
                isinstance(m["content"], str) or any(b.get("type") == "text" for b in m["content"])
            )
        ),
        default=0,
    )
    prompt_texts = _texts(messages[start]["content"]) if messages else [""]
    prompt = _unquoted(prompt_texts[-1])
    names = {t.get("name") for t in body.get("tools") or []}
    tools = next((t for t in _TOOLSETS if t.write in names), _TOOLSETS[0])
    read_tool, write_tool, shell_tool = tools.read, tools.write, tools.shell
    writes = set()
    read_done = False
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or isinstance(m["content"], str):
            continue
        for block in m["content"]:
            if block.get("type") != "tool_use":
                continue
            path = str(block["input"].get(tools.path) or "")
            if block["name"] == write_tool:
                writes.add(path.rsplit("/", 1)[-1])
            if block["name"] == read_tool and i > start:
                read_done = True
    results = [
        t
        for m in messages[start + 1 :]
        if m["role"] == "user" and not isinstance(m["content"], str)
        for b in m["content"]
        if b.get("type") == "tool_result"
        for t in _texts(b.get("content"))
    ]
    cwd_match = re.search(
        r"(?:Primary working directory|Current working directory|Working directory): (\S+)",
        _system_text(body),
    )
    cwd = cwd_match.group(1) if cwd_match else "."
    step = plan(prompt=prompt, turn_results=results, written=writes, read_done=read_done)
    tool_id = f"toolu_{uuid.uuid4().hex[:20]}"
    path_key = tools.path
    if step.kind == "read":
        tool = {"name": read_tool, "input": {path_key: f"{cwd}/{TASK_FILE}"}}
        say = "Reading the task."
    elif step.kind == "write":
        tool = {
            "name": write_tool,
            "input": {path_key: f"{cwd}/{step.name}", tools.content: step.content},
        }
        say = f"Creating {step.name}."
    elif step.kind == "loop":
        tool = {"name": shell_tool, "input": {"command": "echo again", "description": "Loop"}}
        say = "Once more."
    else:
        return [{"type": "text", "text": step.text}], "end_turn"
    return [
        {"type": "text", "text": say},
        {"type": "tool_use", "id": tool_id, **tool},
    ], "tool_use"


def _unquoted(text: str) -> str:
    # OpenCode sends a prompt with spaces as `"..."` with its inner quotes escaped.
    if len(text) > 1 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"')
    return text


def _system_text(body: dict[str, Any]) -> str:
    system = body.get("system") or ""
    if isinstance(system, str):
        return system
    return "\n".join(b.get("text", "") for b in system)


async def _anthropic_sse(message: dict[str, Any]) -> AsyncIterator[bytes]:
    start = {**message, "content": [], "stop_reason": None}
    yield _sse("message_start", {"type": "message_start", "message": start})
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            empty: dict[str, Any] = {"type": "text", "text": ""}
            delta: dict[str, Any] = {"type": "text_delta", "text": block["text"]}
        else:
            empty = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": empty},
        )
        yield _sse(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": OUT_TOKENS},
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


# ---- the OpenAI side of the script ------------------------------------------------------


def _openai_turn(body: dict[str, Any]) -> dict[str, Any]:
    items = body.get("input") or []

    def text_of(item: dict[str, Any]) -> str:
        content = item.get("content")
        if isinstance(content, str):
            return content
        return "\n".join(c.get("text", "") for c in content or [])

    start = max(
        (
            i
            for i, it in enumerate(items)
            if it.get("type", "message") == "message"
            and it.get("role") == "user"
            and not text_of(it).lstrip().startswith("<")
        ),
        default=0,
    )
    prompt = text_of(items[start]) if items else ""
    writes = set()
    read_done = False
    results = []
    for i, it in enumerate(items):
        kind = it.get("type")
        if kind == "custom_tool_call" and it.get("name") == "apply_patch":
            writes.update(re.findall(r"\*\*\* Add File: (\S+)", it.get("input", "")))
        elif kind == "function_call" and i > start and TASK_FILE in it.get("arguments", ""):
            read_done = True
        elif kind in ("function_call_output", "custom_tool_call_output") and i > start:
            output = it.get("output")
            results.append(output if isinstance(output, str) else json.dumps(output))
    step = plan(prompt=prompt, turn_results=results, written=writes, read_done=read_done)
    call_id = f"call_{uuid.uuid4().hex[:20]}"
    if step.kind == "read":
        return _function_call(call_id, f"cat {TASK_FILE}")
    if step.kind == "loop":
        return _function_call(call_id, "echo again")
    if step.kind == "write":
        lines = "".join(f"+{line}\n" for line in step.content.splitlines())
        patch = f"*** Begin Patch\n*** Add File: {step.name}\n{lines}*** End Patch\n"
        return {
            "type": "custom_tool_call",
            "id": f"ctc_{uuid.uuid4().hex[:20]}",
            "call_id": call_id,
            "name": "apply_patch",
            "input": patch,
            "status": "completed",
        }
    return {
        "type": "message",
        "id": f"msg_{uuid.uuid4().hex[:20]}",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": step.text, "annotations": []}],
    }


def _function_call(call_id: str, cmd: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{uuid.uuid4().hex[:20]}",
        "call_id": call_id,
        "name": "exec_command",
        "arguments": json.dumps({"cmd": cmd}),
        "status": "completed",
    }


async def _openai_sse(item: dict[str, Any]) -> AsyncIterator[bytes]:
    response_id = f"resp_{uuid.uuid4().hex[:20]}"
    yield _sse(
        "response.created",
        {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}},
    )
    yield _sse(
        "response.output_item.done",
        {"type": "response.output_item.done", "output_index": 0, "item": item},
    )
    usage = {
        "input_tokens": IN_TOKENS,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": OUT_TOKENS,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": IN_TOKENS + OUT_TOKENS,
    }
    yield _sse(
        "response.completed",
        {
            "type": "response.completed",
            "response": {
                "id": response_id,
                "status": "completed",
                "output": [item],
                "usage": usage,
            },
        },
    )


# ---- the Gemini side of the script --------------------------------------------------------


def _fill(schema: dict[str, Any]) -> Any:
    """A value that satisfies a JSON schema of the CLI's side calls (first enum value)."""
    kind = str(schema.get("type", "object")).lower()
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "object":
        return {k: _fill(v) for k, v in (schema.get("properties") or {}).items()}
    return {"string": "ok", "integer": 10, "number": 10, "boolean": False, "array": []}.get(kind)


def _strings(value: Any) -> list[str]:
    """Every string inside a function response (its output, as the model would read it)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _strings(v)]
    if isinstance(value, list):
        return [t for v in value for t in _strings(v)]
    return []


def _gemini_turn(body: dict[str, Any]) -> list[dict[str, Any]]:
    contents = body.get("contents") or []

    def texts(content: dict[str, Any]) -> list[str]:
        return [p["text"] for p in content.get("parts") or [] if "text" in p]

    start = max(
        (
            i
            for i, c in enumerate(contents)
            if c.get("role") == "user" and any(not t.lstrip().startswith("<") for t in texts(c))
        ),
        default=0,
    )
    prompt = texts(contents[start])[-1] if contents and texts(contents[start]) else ""
    everything = "\n".join(t for c in contents for t in texts(c))
    cwd_match = re.search(r"Workspace Directories:\*\*\n\s*- (\S+)", everything)
    cwd = cwd_match.group(1) if cwd_match else "."
    writes = set()
    read_done = False
    results = []
    for i, content in enumerate(contents):
        for part in content.get("parts") or []:
            call = part.get("functionCall")
            if call and call.get("name") == "write_file":
                writes.add(str(call.get("args", {}).get("file_path", "")).rsplit("/", 1)[-1])
            if call and call.get("name") == "read_file" and i > start:
                read_done = True
            answer = part.get("functionResponse")
            if answer and i > start:
                results.extend(_strings(answer.get("response")))
    step = plan(prompt=prompt, turn_results=results, written=writes, read_done=read_done)
    if step.kind == "read":
        call = {"name": "read_file", "args": {"file_path": f"{cwd}/{TASK_FILE}"}}
        say = "Reading the task."
    elif step.kind == "write":
        call = {
            "name": "write_file",
            "args": {"file_path": f"{cwd}/{step.name}", "content": step.content},
        }
        say = f"Creating {step.name}."
    elif step.kind == "loop":
        call = {"name": "run_shell_command", "args": {"command": "echo again"}}
        say = "Once more."
    else:
        return [{"text": step.text}]
    return [{"text": say}, {"functionCall": call}]


async def _gemini_sse(chunk: dict[str, Any]) -> AsyncIterator[bytes]:
    yield f"data: {json.dumps(chunk)}\r\n\r\n".encode()

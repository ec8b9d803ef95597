"""OpenCode: `opencode run --format json` (inventory §4.1, "experimental").

Events of the real CLI (1.18): `{type, timestamp, sessionID, part|error}` with type
step_start, text, reasoning, tool_use (a completed or failed tool part), step_finish
(carries cost and tokens per step) and error. OpenCode reports its own cost per step,
priced from the model catalogue built into the binary; the run's cost is their sum.

The model is `provider/model`; a base URL goes into that provider's options in
opencode.json (OpenCode's own config), so an Anthropic or OpenAI provider can point
at a gateway or a local endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from integrations.agents.base import AgentOutcome, ParsedEntry, SetupFile, Stream
from integrations.agents.common import (
    MAX_RESULT_CHARS,
    classify_failure,
    clip,
    decode,
    last_meta,
    money,
    raw,
    summary_of,
    tool_summary,
)
from integrations.agents.setup_files import skill_files
from schemas.runner import RunSpec

# Everything OpenCode would fetch at run time, switched off: self-update, session
# sharing, the models.dev catalogue (the binary carries a snapshot), LSP server
# downloads, and the npm install of @opencode-ai/plugin into its config directories,
# which goes through npm's own config (`offline` makes it fail at once, with a warning
# in OpenCode's log, instead of reaching the registry).
QUIET_ENV = {
    "OPENCODE_DISABLE_AUTOUPDATE": "true",
    "OPENCODE_DISABLE_SHARE": "true",
    "OPENCODE_DISABLE_MODELS_FETCH": "true",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "true",
    "npm_config_offline": "true",
}


def provider_of(model: str | None) -> str | None:
    return model.split("/", 1)[0] if model and "/" in model else None


def provider_base_url(provider: str, base_url: str) -> str:
    # The AI SDK's Anthropic provider wants the /v1 prefix that ANTHROPIC_BASE_URL (as
    # Claude Code reads it) leaves out.
    base = base_url.rstrip("/")
    if provider == "anthropic" and not base.endswith("/v1"):
        base += "/v1"
    return base


class OpenCodeAdapter:
    agent_type = "opencode"
    prompt_filename = "prompt.md"

    def build_command(self, spec: RunSpec, *, prompt_file: Path) -> list[str]:
        command = ["opencode", "run", "--format", "json"]
        if spec.model:
            command += ["--model", spec.model]
        if spec.resume_session_id:
            command += ["--session", spec.resume_session_id]
        # OpenCode hands the model a message with spaces in double quotes (inner quotes
        # escaped), as if typed on a shell line: real models read it as the prompt.
        return [*command, "--", spec.prompt]

    def env(self, spec: RunSpec) -> dict[str, str]:
        # OpenCode (Bun) takes its directory from $PWD when set, not from the process's
        # working directory: an inherited PWD would make it work (and look for
        # opencode.json) wherever the runner was started.
        return {**QUIET_ENV, "PWD": spec.worktree_path}

    def setup_files(self, spec: RunSpec) -> list[SetupFile]:
        config: dict[str, Any] = {
            "$schema": "https://opencode.ai/config.json",
            "autoupdate": False,
            "share": "disabled",
        }
        provider = provider_of(spec.model)
        if provider and spec.model_base_url:
            url = provider_base_url(provider, spec.model_base_url)
            config["provider"] = {provider: {"options": {"baseURL": url}}}
        # Optio's sandbox is the isolation; the agent must not stop to ask.
        config["permission"] = {"edit": "allow", "bash": "allow", "webfetch": "allow"}
        if spec.mcp_servers:
            config["mcp"] = {
                s.name: {
                    "type": "local",
                    "command": [s.command, *s.args],
                    "environment": s.env,
                    "enabled": True,
                }
                for s in spec.mcp_servers
            }
        files = [SetupFile("opencode.json", json.dumps(config, indent=2) + "\n", mode=0o600)]
        return files + skill_files(spec.skills, root=".opencode")

    def before_run(self, spec: RunSpec, *, home: Path) -> list[ParsedEntry]:
        meta = {"model": spec.model, "provider": provider_of(spec.model)}
        text = f"OpenCode · model {spec.model or 'default'}"
        if spec.resume_session_id:
            text += f" · resuming session {spec.resume_session_id}"
        return [ParsedEntry("system", text, "stdout", meta)]

    def parse_line(self, line: str, stream: Stream) -> list[ParsedEntry]:
        event = decode(line) if stream == "stdout" else None
        if event is None:
            return raw(line, stream)
        kind = event.get("type")
        part: dict[str, Any] = event.get("part") or {}
        session = {"sessionId": event.get("sessionID")}
        if kind == "step_start":
            return []
        if kind == "text":
            return [ParsedEntry("text", str(part.get("text") or ""), "stdout", session)]
        if kind == "reasoning":
            return [ParsedEntry("thinking", str(part.get("text") or ""), "stdout", session)]
        if kind == "tool_use":
            state = part.get("state") or {}
            name = str(part.get("tool"))
            tool_input = state.get("input") or {}
            use_meta = {
                **session,
                "toolName": name,
                "toolUseId": part.get("callID"),
                "toolInput": clip(json.dumps(tool_input), 2000),
            }
            failed = state.get("status") == "error"
            output = str(state.get("error") if failed else state.get("output") or "")
            result_meta = {"toolUseId": part.get("callID"), "isError": failed}
            return [
                ParsedEntry("tool_use", tool_summary(name, tool_input), "stdout", use_meta),
                ParsedEntry("tool_result", clip(output, MAX_RESULT_CHARS), "stdout", result_meta),
            ]
        if kind == "step_finish":
            tokens = part.get("tokens") or {}
            cache = tokens.get("cache") or {}
            step = {
                "cost": str(part.get("cost") or 0),
                "input": int(tokens.get("input") or 0)
                + int(cache.get("read") or 0)
                + int(cache.get("write") or 0),
                "output": int(tokens.get("output") or 0) + int(tokens.get("reasoning") or 0),
                "reason": part.get("reason"),
            }
            text = (
                f"Step finished ({step['reason']}) · {step['input']} in"
                f" / {step['output']} out · ${step['cost']}"
            )
            return [ParsedEntry("usage", text, "stdout", {**session, "step": step})]
        if kind == "error":
            error = event.get("error") or {}
            data = error.get("data") or {}
            message = str(data.get("message") or error.get("name") or "error")
            api = {
                "status": data.get("statusCode"),
                "url": (data.get("metadata") or {}).get("url"),
                "message": message,
            }
            failure = _failure(api, None)
            meta = {**session, "failure": failure, "apiError": api}
            return [ParsedEntry("error", failure, "stdout", meta)]
        return raw(line, stream)

    def result(self, exit_code: int, entries: Sequence[ParsedEntry]) -> AgentOutcome:
        steps = [e.metadata["step"] for e in entries if "step" in e.metadata]
        fields: dict[str, Any] = {
            "session_id": last_meta(entries, "sessionId"),
            "model": last_meta(entries, "model"),
        }
        if steps:
            fields.update(
                cost_usd=money(sum((Decimal(s["cost"]) for s in steps), Decimal(0))),
                input_tokens=sum(s["input"] for s in steps),
                output_tokens=sum(s["output"] for s in steps),
            )
        failure = last_meta(entries, "failure")
        api = last_meta(entries, "apiError")
        if api:
            failure = _failure(api, last_meta(entries, "provider"))
        summary = summary_of(entries)
        if exit_code != 0 or failure:
            error = failure or classify_failure(f"OpenCode exited with code {exit_code}")
            return AgentOutcome(success=False, summary=summary or error, error=error, **fields)
        return AgentOutcome(
            success=True, summary=summary or "Agent completed successfully", **fields
        )


def _failure(api: dict[str, Any], provider: str | None) -> str:
    """`HTTP 401 from the anthropic provider (<url>): <message>`, auth failures named."""
    status, message = api.get("status"), str(api.get("message"))
    if not status:
        return classify_failure(message)
    source = f" from the {provider} provider" if provider else ""
    if api.get("url"):
        source += f" ({api['url']})" if provider else f" from {api['url']}"
    text = f"HTTP {status}{source}: {message}"
    if status in (401, 403):
        return f"Agent authentication failed: {text}"
    return classify_failure(text)

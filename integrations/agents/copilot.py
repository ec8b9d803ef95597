"""GitHub Copilot CLI: `copilot -p ... --output-format json` (JSONL session events).

Shapes recorded from the real CLI 1.0.102 run against a local provider (BYOK:
COPILOT_PROVIDER_BASE_URL + COPILOT_OFFLINE). Copilot reports no tokens or cost
(a subscription counts premium requests), so runs carry no cost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from integrations.agents.base import AgentOutcome, ParsedEntry, SetupFile, Stream
from integrations.agents.common import (
    MAX_RESULT_CHARS,
    classify_failure,
    clip,
    decode,
    last_meta,
    raw,
    summary_of,
    tool_summary,
)
from integrations.agents.setup_files import agent_skill_dirs
from schemas.runner import RunSpec

# Streaming deltas, bookkeeping and per-call telemetry: the complete events say it all.
_SKIPPED_PREFIXES = ("model.", "assistant.message_", "assistant.tool_call_delta", "assistant.turn")
_SKIPPED = {"assistant.idle", "session.tools_updated", "session.skills_loaded", "user.message"}


class CopilotAdapter:
    agent_type = "copilot"
    prompt_filename = "prompt.md"

    def build_command(self, spec: RunSpec, *, prompt_file: Path) -> list[str]:
        command = ["copilot", "-p", spec.prompt, "--output-format", "json"]
        # Optio's sandbox is the isolation; the agent must not stop to ask.
        command += ["--allow-all-tools", "--allow-all-paths", "--no-auto-update"]
        if spec.model:
            command += ["--model", spec.model]
        if spec.effort:
            command += ["--reasoning-effort", spec.effort]
        if spec.resume_session_id:
            command += ["--resume", spec.resume_session_id]
        if spec.mcp_servers:
            servers = {
                s.name: {
                    "type": "local",
                    "command": s.command,
                    "args": s.args,
                    "env": s.env,
                    "tools": ["*"],
                }
                for s in spec.mcp_servers
            }
            command += ["--additional-mcp-config", json.dumps({"mcpServers": servers})]
        return command

    def env(self, spec: RunSpec) -> dict[str, str]:
        env = {"COPILOT_AUTO_UPDATE": "false", "NO_COLOR": "1"}
        if spec.model_base_url:
            # BYOK: the CLI talks to this provider only, with no GitHub sign-in or telemetry.
            env.update(COPILOT_PROVIDER_BASE_URL=spec.model_base_url, COPILOT_OFFLINE="true")
        return env

    def setup_files(self, spec: RunSpec) -> list[SetupFile]:
        return agent_skill_dirs(spec.skills, root=".github")

    def before_run(self, spec: RunSpec, *, home: Path) -> list[ParsedEntry]:
        return []

    def parse_line(self, line: str, stream: Stream) -> list[ParsedEntry]:
        event = decode(line) if stream == "stdout" else None
        if event is None:
            return raw(line, stream)
        kind = str(event.get("type", ""))
        data: dict[str, Any] = event.get("data") or {}
        if kind in _SKIPPED or kind.startswith(_SKIPPED_PREFIXES):
            return []
        if kind == "session.mcp_servers_loaded":
            names = [
                str(s.get("name", s)) if isinstance(s, dict) else str(s)
                for s in data.get("servers", [])
            ]
            return [ParsedEntry("system", f"MCP servers: {', '.join(names) or 'none'}")]
        if kind == "assistant.message":
            text = str(data.get("content") or "")
            meta = {"model": data.get("model")}
            return [ParsedEntry("text", text, "stdout", meta)] if text.strip() else []
        if kind == "assistant.reasoning":
            return [ParsedEntry("thinking", str(data.get("content") or ""))]
        if kind == "tool.execution_start":
            args = data.get("arguments") or {}
            name = str(data.get("toolName"))
            meta = {
                "toolName": name,
                "toolUseId": data.get("toolCallId"),
                "toolInput": clip(json.dumps(args), 2000),
            }
            return [ParsedEntry("tool_use", tool_summary(name, args), "stdout", meta)]
        if kind == "tool.execution_complete":
            ok = bool(data.get("success"))
            result = data.get("result") or {}
            text = (
                str(result.get("content") or "")
                if ok
                else str((data.get("error") or {}).get("message"))
            )
            meta = {"toolUseId": data.get("toolCallId"), "isError": not ok}
            return [ParsedEntry("tool_result", clip(text, MAX_RESULT_CHARS), "stdout", meta)]
        if kind == "session.info":
            return [ParsedEntry("system", str(data.get("message") or data.get("infoType")))]
        if kind == "session.error":
            status = data.get("statusCode")
            message = str(data.get("message") or "session error")
            if data.get("errorType") == "authentication" or status in (401, 403):
                failure = f"Agent authentication failed: {message}"
            else:
                failure = classify_failure(message)
            return [ParsedEntry("error", failure, "stdout", {"sessionError": failure})]
        if kind == "result":
            usage = event.get("usage") or {}
            meta = {
                "sessionId": event.get("sessionId"),
                "exitCode": event.get("exitCode"),
                "resultSeen": True,
            }
            seconds = (usage.get("sessionDurationMs") or 0) / 1000
            text = f"Premium requests: {usage.get('premiumRequests', 0)} · {seconds:.1f}s"
            return [ParsedEntry("usage", text, "stdout", meta)]
        return raw(line, stream)

    def result(self, exit_code: int, entries: Sequence[ParsedEntry]) -> AgentOutcome:
        session_id = last_meta(entries, "sessionId")
        model = last_meta(entries, "model")
        failure = last_meta(entries, "sessionError")
        summary = summary_of(entries)
        if exit_code != 0 or failure or not last_meta(entries, "resultSeen"):
            error = failure or classify_failure(f"Copilot exited with code {exit_code}")
            return AgentOutcome(False, summary or error, error, session_id=session_id, model=model)
        return AgentOutcome(
            True, summary or "Agent completed successfully", session_id=session_id, model=model
        )

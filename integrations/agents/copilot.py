"""GitHub Copilot CLI: `copilot -p ... --output-format json` (JSONL session events).

Shapes recorded from the real CLI 1.0.102 run against a local provider (BYOK:
COPILOT_PROVIDER_BASE_URL + COPILOT_OFFLINE). Its stdout reports neither tokens nor
cost (a subscription counts premium requests); the session's own event log
(~/.copilot/session-state/<id>/events.jsonl) has a `session.usage_record` per model
call, with tokens and a cost of 0 for BYOK: those tokens are priced with pricing.py.
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
from integrations.agents.pricing import cost, price_for
from integrations.agents.setup_files import agent_skill_dirs
from schemas.runner import RunSpec

USAGE_RECORD = "session.usage_record"


def session_events(home: Path, session_id: str) -> Path:
    return home / ".copilot" / "session-state" / session_id / "events.jsonl"


def usage_records(home: Path, session_id: str) -> list[dict[str, Any]]:
    """The session's model calls so far: {model, inputTokens, outputTokens, cache*}."""
    path = session_events(home, session_id)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if USAGE_RECORD not in line:
            continue
        event = decode(line) or {}
        usage = (event.get("data") or {}).get("usage")
        if event.get("type") == USAGE_RECORD and isinstance(usage, dict):
            records.append(usage)
    return records


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
        # MCP servers come from ~/.copilot/mcp-config.json (setup_files): their env
        # values stay off the command line.
        return command

    def env(self, spec: RunSpec) -> dict[str, str]:
        env = {"COPILOT_AUTO_UPDATE": "false", "NO_COLOR": "1"}
        if spec.model_base_url:
            # BYOK: the CLI talks to this provider only, with no GitHub sign-in or telemetry.
            env.update(COPILOT_PROVIDER_BASE_URL=spec.model_base_url, COPILOT_OFFLINE="true")
        return env

    def setup_files(self, spec: RunSpec) -> list[SetupFile]:
        files = agent_skill_dirs(spec.skills, root=".github")
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
            body = json.dumps({"mcpServers": servers}, indent=2) + "\n"
            files.append(SetupFile(".copilot/mcp-config.json", body, "home", mode=0o600))
        return files

    def before_run(self, spec: RunSpec, *, home: Path) -> list[ParsedEntry]:
        # A resumed session's log already holds the earlier runs' usage records.
        before = len(usage_records(home, spec.resume_session_id)) if spec.resume_session_id else 0
        meta = {"agentHome": str(home), "usageBaseline": before, "modelPrices": spec.model_prices}
        text = f"Copilot · model {spec.model or 'default'}"
        if spec.resume_session_id:
            text += f" · resuming session {spec.resume_session_id}"
        return [ParsedEntry("system", text, "stdout", meta)]

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
        fields: dict[str, Any] = {"session_id": session_id, "model": model}
        home = last_meta(entries, "agentHome")
        if home and session_id:
            records = usage_records(Path(home), session_id)[last_meta(entries, "usageBaseline") :]
            fields.update(_usage(records, last_meta(entries, "modelPrices") or {}))
        if exit_code != 0 or failure or not last_meta(entries, "resultSeen"):
            error = failure or classify_failure(f"Copilot exited with code {exit_code}")
            return AgentOutcome(False, summary or error, error, **fields)
        return AgentOutcome(True, summary or "Agent completed successfully", **fields)


def _usage(records: list[dict[str, Any]], overrides: dict[str, list[float]]) -> dict[str, Any]:
    """Tokens of this run's model calls, and their price (None if a model is unpriced)."""
    if not records:
        return {}
    input_tokens = output_tokens = 0
    total: Decimal | None = Decimal(0)
    for record in records:
        cached = int(record.get("cacheReadTokens") or 0)
        fresh = int(record.get("inputTokens") or 0) + int(record.get("cacheWriteTokens") or 0)
        out = int(record.get("outputTokens") or 0)
        input_tokens += fresh + cached
        output_tokens += out
        price = price_for(str(record.get("model") or ""), overrides)
        if price is None or total is None:
            total = None
            continue
        total += Decimal(
            cost(price, input_tokens=fresh + cached, cached_input_tokens=cached, output_tokens=out)
        )
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": money(total) if total is not None else None,
    }

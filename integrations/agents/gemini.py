"""Gemini CLI: `gemini -p ... --output-format stream-json` (JSONL events).

Event shapes from the CLI's own source (0.61, JsonStreamEventType: init, message,
tool_use, tool_result, error, result with stats). Gemini reports tokens, not cost:
the cost comes from the price table. It can target a local endpoint through
GOOGLE_GEMINI_BASE_URL, but the test suite has no Gemini API double yet.
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
    raw,
    tool_summary,
)
from integrations.agents.pricing import Price, cost, price_for
from integrations.agents.setup_files import skill_files
from schemas.runner import RunSpec

# Exit code 53: the session's turn limit (model.maxSessionTurns) was reached.
TURN_LIMIT_EXIT = 53


class GeminiAdapter:
    agent_type = "gemini"
    prompt_filename = "prompt.md"

    def build_command(self, spec: RunSpec, *, prompt_file: Path) -> list[str]:
        command = ["gemini", "-p", spec.prompt, "--output-format", "stream-json"]
        command += ["--approval-mode", "yolo"]
        if spec.model:
            command += ["-m", spec.model]
        if spec.resume_session_id:
            command += ["--resume", spec.resume_session_id]
        return command

    def env(self, spec: RunSpec) -> dict[str, str]:
        env = {"GEMINI_CLI_NO_RELAUNCH": "true"}
        if spec.model_base_url:
            env["GOOGLE_GEMINI_BASE_URL"] = spec.model_base_url
        return env

    def setup_files(self, spec: RunSpec) -> list[SetupFile]:
        settings: dict[str, Any] = {
            "model": {"maxSessionTurns": spec.max_turns},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
        }
        if spec.mcp_servers:
            settings["mcpServers"] = {
                s.name: {"command": s.command, "args": s.args, "env": s.env}
                for s in spec.mcp_servers
            }
        files = [
            SetupFile(".gemini/settings.json", json.dumps(settings, indent=2) + "\n", mode=0o600)
        ]
        for skill in spec.skills:
            # JSON strings are valid TOML basic strings.
            description = json.dumps(skill.description or skill.name)
            body = f"description = {description}\nprompt = {json.dumps(skill.prompt)}\n"
            files.append(SetupFile(f".gemini/commands/{skill.name}.toml", body))
        return files + skill_files(
            [s for s in spec.skills if s.layout == "skill-dir"], root=".gemini"
        )

    def before_run(self, spec: RunSpec, *, home: Path) -> list[ParsedEntry]:
        price = price_for(spec.model, spec.model_prices)
        meta = {
            "price": [str(price.input), str(price.output), str(price.cached_input)]
            if price
            else None
        }
        return [ParsedEntry("system", f"Gemini · model {spec.model or 'default'}", "stdout", meta)]

    def parse_line(self, line: str, stream: Stream) -> list[ParsedEntry]:
        event = decode(line) if stream == "stdout" else None
        if event is None:
            return raw(line, stream)
        kind = event.get("type")
        if kind == "init":
            meta = {"sessionId": event.get("session_id"), "model": event.get("model")}
            return [
                ParsedEntry("system", f"Session started · {event.get('model')}", "stdout", meta)
            ]
        if kind == "message":
            if event.get("role") != "assistant":
                return []
            return [
                ParsedEntry(
                    "text",
                    str(event.get("content") or ""),
                    "stdout",
                    {"delta": bool(event.get("delta"))},
                )
            ]
        if kind == "tool_use":
            params = event.get("parameters") or {}
            name = str(event.get("tool_name"))
            meta = {
                "toolName": name,
                "toolUseId": event.get("tool_id"),
                "toolInput": clip(json.dumps(params), 2000),
            }
            return [ParsedEntry("tool_use", tool_summary(name, params), "stdout", meta)]
        if kind == "tool_result":
            failed = event.get("status") == "error"
            text = str(
                (event.get("error") or {}).get("message") if failed else event.get("output") or ""
            )
            meta = {"toolUseId": event.get("tool_id"), "isError": failed}
            return [ParsedEntry("tool_result", clip(text, MAX_RESULT_CHARS), "stdout", meta)]
        if kind == "error":
            return [
                ParsedEntry(
                    "error",
                    str(event.get("message")),
                    "stdout",
                    {"severity": event.get("severity")},
                )
            ]
        if kind == "result":
            stats = event.get("stats") or {}
            outcome = {
                "status": event.get("status"),
                "error": (event.get("error") or {}).get("message"),
                "inputTokens": int(stats.get("input_tokens") or 0),
                "cachedTokens": int(stats.get("cached") or 0),
                "outputTokens": int(stats.get("output_tokens") or 0),
                "models": list((stats.get("models") or {}).keys()),
            }
            text = (
                f"{outcome['inputTokens']} in / {outcome['outputTokens']} out"
                f" · {stats.get('tool_calls', 0)} tool calls"
            )
            return [ParsedEntry("usage", text, "stdout", {"outcome": outcome})]
        return raw(line, stream)

    def result(self, exit_code: int, entries: Sequence[ParsedEntry]) -> AgentOutcome:
        outcome: dict[str, Any] | None = last_meta(entries, "outcome")
        session_id = last_meta(entries, "sessionId")
        model = (
            (outcome or {}).get("models", [None])[0]
            if outcome and outcome["models"]
            else last_meta(entries, "model")
        )
        # Assistant text arrives as deltas: the summary is the last message put together.
        tail: list[str] = []
        for entry in reversed(entries):
            if entry.log_type == "text" and entry.metadata.get("delta") is not None:
                tail.insert(0, entry.content)
            elif entry.log_type in ("tool_use", "tool_result"):
                break
        summary = clip("".join(tail).strip(), 2000)
        fields: dict[str, Any] = {"session_id": session_id, "model": model}
        if outcome:
            fields.update(
                input_tokens=outcome["inputTokens"], output_tokens=outcome["outputTokens"]
            )
            price = last_meta(entries, "price")
            if price:
                table = Price(Decimal(price[0]), Decimal(price[1]), Decimal(price[2]))
                fields["cost_usd"] = cost(
                    table,
                    input_tokens=outcome["inputTokens"],
                    cached_input_tokens=outcome["cachedTokens"],
                    output_tokens=outcome["outputTokens"],
                )
        if exit_code == TURN_LIMIT_EXIT:
            error = "Agent stopped: maximum number of turns reached"
        elif outcome is None or outcome["status"] != "success" or exit_code != 0:
            detail = (outcome or {}).get("error") or f"Gemini exited with code {exit_code}"
            error = classify_failure(str(detail))
        else:
            return AgentOutcome(
                success=True, summary=summary or "Agent completed successfully", **fields
            )
        return AgentOutcome(success=False, summary=summary or error, error=error, **fields)

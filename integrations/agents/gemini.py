"""Gemini CLI: `gemini -p ... --output-format stream-json` (JSONL events).

Event shapes from the real CLI (0.61: init, message, tool_use, tool_result, error,
result with stats per model). Gemini reports tokens, not cost: each model's tokens are
priced with the table in pricing.py. GOOGLE_GEMINI_BASE_URL points it at another
Gemini API endpoint, honoured only with the API-key auth type, which the user settings
select (with the variable alone the CLI picks the "gateway" type and refuses to run).
"""

from __future__ import annotations

import json
import re
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
    tool_summary,
)
from integrations.agents.pricing import cost, price_for
from integrations.agents.setup_files import skill_files
from schemas.runner import RunSpec

# Exit code 53: the session's turn limit (model.maxSessionTurns) was reached.
TURN_LIMIT_EXIT = 53
# `[API Error: {"error":{"code":401,"message":...,"status":"UNAUTHENTICATED"}}]`
_API_ERROR = re.compile(r"\[API Error: (\{.*\})\]", re.DOTALL)

# User settings (~/.gemini/settings.json): API-key auth (the base URL is only honoured
# with it), no usage statistics, telemetry, update checks or update nags.
USER_SETTINGS: dict[str, Any] = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
}


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
        env = {
            "GEMINI_CLI_NO_RELAUNCH": "true",
            # The worktree is Optio's: trusted, so yolo mode and its settings apply
            # (an untrusted folder drops both).
            "GEMINI_CLI_TRUST_WORKSPACE": "true",
        }
        if spec.model_base_url:
            env["GOOGLE_GEMINI_BASE_URL"] = spec.model_base_url
        return env

    def setup_files(self, spec: RunSpec) -> list[SetupFile]:
        user = {**USER_SETTINGS, "model": {"maxSessionTurns": spec.max_turns}}
        settings: dict[str, Any] = {}
        if spec.mcp_servers:
            settings["mcpServers"] = {
                s.name: {"command": s.command, "args": s.args, "env": s.env}
                for s in spec.mcp_servers
            }
        files = [
            SetupFile(
                ".gemini/settings.json", json.dumps(user, indent=2) + "\n", "home", mode=0o600
            )
        ]
        if settings:
            body = json.dumps(settings, indent=2) + "\n"
            files.append(SetupFile(".gemini/settings.json", body, mode=0o600))
        for skill in spec.skills:
            # JSON strings are valid TOML basic strings.
            description = json.dumps(skill.description or skill.name)
            body = f"description = {description}\nprompt = {json.dumps(skill.prompt)}\n"
            files.append(SetupFile(f".gemini/commands/{skill.name}.toml", body))
        return files + skill_files(
            [s for s in spec.skills if s.layout == "skill-dir"], root=".gemini"
        )

    def before_run(self, spec: RunSpec, *, home: Path) -> list[ParsedEntry]:
        # The CLI may call several models in one run (routing, side calls): each is
        # priced on its own, with the operator's prices over the table.
        meta = {"modelPrices": spec.model_prices}
        text = f"Gemini · model {spec.model or 'default'}"
        if spec.resume_session_id:
            text += f" · resuming session {spec.resume_session_id}"
        return [ParsedEntry("system", text, "stdout", meta)]

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
            per_model = {
                name: [
                    int(usage.get("input_tokens") or 0),
                    int(usage.get("cached") or 0),
                    int(usage.get("output_tokens") or 0),
                ]
                for name, usage in (stats.get("models") or {}).items()
                if isinstance(usage, dict)
            }
            outcome = {
                "status": event.get("status"),
                "error": (event.get("error") or {}).get("message"),
                "inputTokens": int(stats.get("input_tokens") or 0),
                "cachedTokens": int(stats.get("cached") or 0),
                "outputTokens": int(stats.get("output_tokens") or 0),
                "models": [m for m, (i, _, o) in per_model.items() if i or o] or list(per_model),
                "usageByModel": per_model,
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
            prices = last_meta(entries, "modelPrices") or {}
            fields["cost_usd"] = _priced(outcome.get("usageByModel") or {}, prices)
        if exit_code == TURN_LIMIT_EXIT:
            error = "Agent stopped: maximum number of turns reached"
        elif outcome is None or outcome["status"] != "success" or exit_code != 0:
            detail = (outcome or {}).get("error") or f"Gemini exited with code {exit_code}"
            error = _failure(str(detail))
        else:
            return AgentOutcome(
                success=True, summary=summary or "Agent completed successfully", **fields
            )
        return AgentOutcome(success=False, summary=summary or error, error=error, **fields)


def _priced(usage: dict[str, list[int]], overrides: dict[str, list[float]]) -> str | None:
    """USD over all models the run used; None when one of them has no known price."""
    total = Decimal(0)
    for model, (input_tokens, cached, output_tokens) in usage.items():
        if not (input_tokens or output_tokens):
            continue
        price = price_for(model, overrides)
        if price is None:
            return None
        total += Decimal(
            cost(
                price,
                input_tokens=input_tokens,
                cached_input_tokens=cached,
                output_tokens=output_tokens,
            )
        )
    return money(total) if usage else None


def _failure(detail: str) -> str:
    """The API's own error, named: `Gemini API: HTTP 401 UNAUTHENTICATED: <message>`."""
    match = _API_ERROR.search(detail)
    error: dict[str, Any] = {}
    if match:
        try:
            error = json.loads(match.group(1)).get("error") or {}
        except ValueError:
            error = {}
    if not isinstance(error, dict) or "code" not in error:
        return classify_failure(detail)
    code, status = error.get("code"), error.get("status") or ""
    text = f"Gemini API: HTTP {code} {status}: {error.get('message', '')}".replace("  ", " ")
    if code in (401, 403):
        return f"Agent authentication failed: {text}"
    return classify_failure(text)

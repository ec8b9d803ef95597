"""Claude Code: `claude -p --output-format stream-json --verbose` (inventory §4.1, §4.3).

Its `result` line carries the session id, the cost the CLI computed and the usage of
this invocation only. Errors hide under `subtype: "success"` with `is_error: true` and
`api_error_status` (exit code 1), so success is decided from the result line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from integrations.agents.base import AgentOutcome, ParsedEntry, SetupFile, Stream
from integrations.agents.common import (
    MAX_RESULT_CHARS,
    MAX_SUMMARY_CHARS,
    api_failure,
    classify_failure,
    clip,
    decode,
    last_meta,
    money,
    raw,
    summary_of,
    tool_summary,
)
from integrations.agents.running_cost import RunningCost
from integrations.agents.setup_files import mcp_json, skill_files
from integrations.agents.stream_input import STREAM_INPUT_FLAGS
from schemas.runner import RunSpec

PROVIDER = "Anthropic"
DEFAULT_BASE_URL = "https://api.anthropic.com"

# Noise in stream-json: partial deltas and rate-limit notices say nothing a reader needs.
_SKIPPED = {"stream_event", "rate_limit_event"}


def _model_name(model: str | None) -> str | None:
    # The CLI shows the context window as a suffix, e.g. "claude-opus-4-8[1m]".
    return model.split("[", 1)[0] if model else None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


class ClaudeCodeAdapter:
    agent_type = "claude-code"
    prompt_filename = "prompt.md"

    def __init__(self) -> None:
        # One adapter per run (integrations.agents.get_adapter): the run's spend so far.
        self._spent = RunningCost()

    def build_command(self, spec: RunSpec, *, prompt_file: Path) -> list[str]:
        # The prompt arrives on stdin as the first stream-json message, and messages sent
        # to the running task follow it there (integrations/agents/stream_input.py).
        command = ["claude", "-p", *STREAM_INPUT_FLAGS, "--output-format", "stream-json"]
        command += ["--verbose"]
        # Optio's sandbox is the isolation; the agent must not stop to ask.
        command += ["--dangerously-skip-permissions", "--max-turns", str(spec.max_turns)]
        if spec.model:
            command += ["--model", spec.model]
        if spec.effort:
            command += ["--effort", spec.effort]
        if spec.resume_session_id:
            command += ["--resume", spec.resume_session_id]
        if spec.mcp_servers:
            # Named explicitly, project servers load without the interactive approval.
            command += ["--mcp-config", ".mcp.json"]
        return command

    def env(self, spec: RunSpec) -> dict[str, str]:
        env = {
            # No telemetry, update checks or title generation: only the model API.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
        }
        if spec.model_base_url:
            env["ANTHROPIC_BASE_URL"] = spec.model_base_url
        if spec.agent_max_retries is not None:
            env["CLAUDE_CODE_MAX_RETRIES"] = str(spec.agent_max_retries)
        if os.geteuid() == 0:
            # The CLI refuses to skip permissions as root unless told it is sandboxed.
            env["IS_SANDBOX"] = "1"
        return env

    def setup_files(self, spec: RunSpec) -> list[SetupFile]:
        return mcp_json(spec.mcp_servers) + skill_files(spec.skills, root=".claude")

    def before_run(self, spec: RunSpec, *, home: Path) -> list[ParsedEntry]:
        # Where the requests go: an API error names it (the CLI does not).
        endpoint = f"{(spec.model_base_url or DEFAULT_BASE_URL).rstrip('/')}/v1/messages"
        entries = [
            ParsedEntry("system", f"Claude Code · {endpoint}", "stdout", {"endpoint": endpoint})
        ]
        self._spent = RunningCost(prices=spec.model_prices)
        if spec.resume_session_id:
            meta = {"resumedSessionId": spec.resume_session_id}
            text = f"Resuming session {spec.resume_session_id}"
            entries.append(ParsedEntry("system", text, "stdout", meta))
        return entries

    def parse_line(self, line: str, stream: Stream) -> list[ParsedEntry]:
        event = decode(line) if stream == "stdout" else None
        if event is None:
            return raw(line, stream)
        kind = event.get("type")
        if kind in _SKIPPED:
            return []
        if kind == "system":
            return self._system(event)
        if kind == "assistant":
            return self._assistant(event)
        if kind == "user":
            return self._tool_results(event)
        if kind == "result":
            return self._result(event)
        return raw(line, stream)

    def _system(self, event: dict[str, Any]) -> list[ParsedEntry]:
        subtype = event.get("subtype")
        if subtype == "init":
            model = _model_name(event.get("model"))
            tools = len(event.get("tools") or [])
            meta = {"sessionId": event.get("session_id"), "model": model}
            return [
                ParsedEntry("system", f"Session started · {model} · {tools} tools", "stdout", meta)
            ]
        if subtype == "api_retry":
            text = (
                f"API retry {event.get('attempt')}/{event.get('max_retries')}: "
                f"{event.get('error_status')} {event.get('error', '')}".strip()
            )
            return [ParsedEntry("system", text, "stdout", {"subtype": subtype})]
        return [ParsedEntry("system", str(subtype or "system"), "stdout", {"subtype": subtype})]

    def _assistant(self, event: dict[str, Any]) -> list[ParsedEntry]:
        message = event.get("message") or {}
        model = _model_name(message.get("model"))
        if model == "<synthetic>":  # the CLI's own message (e.g. an API error), not the model's
            model = None
        entries: list[ParsedEntry] = []
        for block in message.get("content") or []:
            block_type = block.get("type")
            if event.get("error") and block_type == "text":
                text = classify_failure(str(block.get("text", "")))
                entries.append(ParsedEntry("error", text, "stdout", {"error": event["error"]}))
            elif block_type == "text" and block.get("text", "").strip():
                entries.append(ParsedEntry("text", block["text"], "stdout", {"model": model}))
            elif block_type == "thinking" and block.get("thinking", "").strip():
                entries.append(ParsedEntry("thinking", block["thinking"]))
            elif block_type == "tool_use":
                tool_input = block.get("input") or {}
                meta = {
                    "toolName": block.get("name"),
                    "toolUseId": block.get("id"),
                    "toolInput": clip(json.dumps(tool_input), 2000),
                }
                summary = tool_summary(str(block.get("name")), tool_input)
                entries.append(ParsedEntry("tool_use", summary, "stdout", meta))
        return entries + self._running_cost(message, model)

    def _running_cost(self, message: dict[str, Any], model: str | None) -> list[ParsedEntry]:
        """The run's estimated spend so far: the CLI states its cost only at the end, and a
        budget must be able to stop the run before that (docs/costs.md)."""
        usage, message_id = message.get("usage"), message.get("id")
        if not isinstance(usage, dict) or not message_id or model is None:
            return []
        if not self._spent.update(str(message_id), model, usage):
            return []
        meta = self._spent.metadata()
        if meta is None:
            return []
        text = f"≈ ${meta['costUsd']} so far (estimate)"
        return [ParsedEntry("usage", text, "stdout", meta)]

    def _tool_results(self, event: dict[str, Any]) -> list[ParsedEntry]:
        content = (event.get("message") or {}).get("content")
        entries = []
        for block in content if isinstance(content, list) else []:
            if block.get("type") != "tool_result":
                continue
            text = _text_of(block.get("content"))
            meta = {"toolUseId": block.get("tool_use_id"), "isError": bool(block.get("is_error"))}
            entries.append(ParsedEntry("tool_result", clip(text, MAX_RESULT_CHARS), "stdout", meta))
        return entries

    def _result(self, event: dict[str, Any]) -> list[ParsedEntry]:
        usage = event.get("usage") or {}
        input_tokens = sum(
            int(usage.get(k) or 0)
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        cost = event.get("total_cost_usd")
        models = [_model_name(m) for m in (event.get("modelUsage") or {})]
        outcome = {
            "isError": bool(event.get("is_error")),
            "subtype": event.get("subtype"),
            "apiErrorStatus": event.get("api_error_status"),
            "resultText": clip(str(event.get("result") or ""), MAX_SUMMARY_CHARS),
            "errors": event.get("errors") or [],
            "sessionId": event.get("session_id"),
            "costUsd": money(cost) if cost is not None else None,
            "inputTokens": input_tokens,
            "outputTokens": int(usage.get("output_tokens") or 0),
            "numTurns": event.get("num_turns"),
            "durationMs": event.get("duration_ms"),
            "model": models[0] if models else None,
        }
        seconds = (event.get("duration_ms") or 0) / 1000
        text = f"{event.get('num_turns', 0)} turns · {seconds:.1f}s · ${outcome['costUsd'] or 0}"
        entries = [ParsedEntry("usage", text, "stdout", {"outcome": outcome})]
        if outcome["isError"]:
            entries.append(ParsedEntry("error", _failure(outcome, endpoint=None)))
        return entries

    def result(self, exit_code: int, entries: Sequence[ParsedEntry]) -> AgentOutcome:
        outcome: dict[str, Any] | None = last_meta(entries, "outcome")
        session_id = last_meta(entries, "sessionId")
        model = last_meta(entries, "model")
        if outcome is None:
            stderr = [e.content for e in entries if e.stream == "stderr"]
            detail = stderr[-1] if stderr else "no result line"
            error = classify_failure(f"Claude Code exited with code {exit_code}: {detail}")
            return AgentOutcome(success=False, summary=error, error=error, session_id=session_id)
        fields: dict[str, Any] = {
            "cost_usd": outcome["costUsd"],
            "input_tokens": outcome["inputTokens"],
            "output_tokens": outcome["outputTokens"],
            "model": outcome["model"] or model,
            "session_id": outcome["sessionId"] or session_id,
        }
        summary = outcome["resultText"] or summary_of(entries)
        if outcome["isError"] or exit_code != 0:
            endpoint = last_meta(entries, "endpoint")
            error = (
                _failure(outcome, endpoint=endpoint)
                if outcome["isError"]
                else f"Claude Code exited with {exit_code}"
            )
            return AgentOutcome(success=False, summary=summary or error, error=error, **fields)
        return AgentOutcome(
            success=True, summary=summary or "Agent completed successfully", **fields
        )


def _failure(outcome: dict[str, Any], *, endpoint: str | None) -> str:
    if outcome["subtype"] == "error_max_turns":
        return f"Agent stopped: {'; '.join(outcome['errors']) or 'maximum number of turns reached'}"
    detail = outcome["resultText"] or "; ".join(outcome["errors"]) or str(outcome["subtype"])
    status = outcome["apiErrorStatus"]
    if status is None and endpoint is None:
        return classify_failure(detail)
    return api_failure(detail, provider=PROVIDER, status=status, endpoint=endpoint)

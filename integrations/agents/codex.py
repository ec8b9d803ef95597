"""Codex: `codex exec --json` (inventory §4.1, §4.3; shapes from the real CLI, 0.171).

Codex reports neither cost nor model, and its `turn.completed` usage is cumulative over
the whole thread: a resumed run subtracts what the thread had used before (read from
the session's rollout file) and prices the rest with the table in pricing.py.
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
    api_failure,
    classify_failure,
    clip,
    decode,
    last_meta,
    raw,
    summary_of,
    tool_summary,
)
from integrations.agents.pricing import Price, cost, price_for
from integrations.agents.setup_files import agent_skill_dirs
from schemas.runner import RunSpec

PROVIDER = "optio"
PROVIDER_NAME = "OpenAI"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Codex shows a 500 only as this canned sentence (no status, no URL); other statuses
# come as "unexpected status 503 Service Unavailable: ..., url: ...".
_CANNED_500 = "experiencing high demand"
_STATUS = re.compile(r"unexpected status (\d{3})")
USAGE_KEYS = ("input_tokens", "cached_input_tokens", "output_tokens")
_CHANGE_VERBS = {"add": "Write", "update": "Edit", "delete": "Delete"}


def _toml(value: object) -> str:
    # JSON strings, lists and numbers are valid TOML literals.
    return json.dumps(value)


def codex_home(home: Path) -> Path:
    return home / ".codex"


class CodexAdapter:
    agent_type = "codex"
    prompt_filename = "prompt.md"

    def build_command(self, spec: RunSpec, *, prompt_file: Path) -> list[str]:
        options = [
            "--json",
            # Optio's sandbox is the isolation (bwrap cannot nest in most pods anyway).
            "--dangerously-bypass-approvals-and-sandbox",
            "--skip-git-repo-check",
            # No analytics, plugin sync or other traffic: only the model API.
            "-c",
            "analytics.enabled=false",
            "--disable",
            "plugins",
        ]
        if spec.model:
            options += ["-m", spec.model]
        if spec.effort:
            options += ["-c", f"model_reasoning_effort={_toml(spec.effort)}"]
        if spec.model_base_url:
            # OPENAI_BASE_URL is ignored and the built-in provider tries WebSockets first:
            # a custom provider speaking the Responses API over HTTPS is what works.
            provider = (
                f'{{name="{PROVIDER}", base_url={_toml(spec.model_base_url)}, '
                f'env_key="OPENAI_API_KEY", wire_api="responses"}}'
            )
            options += ["-c", f"model_provider={PROVIDER}"]
            options += ["-c", f"model_providers.{PROVIDER}={provider}"]
            if spec.agent_max_retries is not None:
                retries = spec.agent_max_retries
                options += ["-c", f"model_providers.{PROVIDER}.request_max_retries={retries}"]
                options += ["-c", f"model_providers.{PROVIDER}.stream_max_retries={retries}"]
        for server in spec.mcp_servers:
            # Values stay out of the command line: env_vars forwards them from the
            # agent's environment, where env() put them.
            table = (
                f"{{command={_toml(server.command)}, args={_toml(server.args)}, "
                f"env_vars={_toml(sorted(server.env))}}}"
            )
            options += ["-c", f"mcp_servers.{server.name}={table}"]
        if spec.resume_session_id:
            return ["codex", "exec", "resume", *options, "--", spec.resume_session_id, spec.prompt]
        return ["codex", "exec", *options, "--", spec.prompt]

    def env(self, spec: RunSpec) -> dict[str, str]:
        env: dict[str, str] = {}
        for server in spec.mcp_servers:
            env.update(server.env)
        if spec.agent_home:
            env["CODEX_HOME"] = str(codex_home(Path(spec.agent_home)))
        return env

    def setup_files(self, spec: RunSpec) -> list[SetupFile]:
        return agent_skill_dirs(spec.skills, root=".agents")

    def before_run(self, spec: RunSpec, *, home: Path) -> list[ParsedEntry]:
        # Codex refuses a CODEX_HOME that does not exist yet.
        codex_home(home).mkdir(parents=True, exist_ok=True)
        baseline = dict.fromkeys(USAGE_KEYS, 0)
        if spec.resume_session_id:
            baseline = _thread_usage(codex_home(home), spec.resume_session_id) or baseline
        price = price_for(spec.model, spec.model_prices)
        meta = {
            "model": spec.model,
            # Where the requests go: an API error names it (for a 500 Codex does not).
            "endpoint": f"{(spec.model_base_url or DEFAULT_BASE_URL).rstrip('/')}/responses",
            "usageBaseline": baseline,
            "price": [str(price.input), str(price.output), str(price.cached_input)]
            if price
            else None,
        }
        text = f"Codex · model {spec.model or 'default'}"
        if spec.resume_session_id:
            text += f" · resuming thread {spec.resume_session_id}"
        return [ParsedEntry("system", text, "stdout", meta)]

    def parse_line(self, line: str, stream: Stream) -> list[ParsedEntry]:
        event = decode(line) if stream == "stdout" else None
        if event is None:
            return raw(line, stream)
        kind = event.get("type")
        if kind == "thread.started":
            meta = {"sessionId": event.get("thread_id")}
            return [ParsedEntry("system", f"Thread {event.get('thread_id')}", "stdout", meta)]
        if kind == "turn.started":
            return []
        if kind in ("item.started", "item.updated", "item.completed"):
            return _item(kind, event.get("item") or {})
        if kind == "turn.completed":
            usage = {k: int((event.get("usage") or {}).get(k) or 0) for k in USAGE_KEYS}
            text = (
                f"Tokens so far in this thread: {usage['input_tokens']} in"
                f" / {usage['output_tokens']} out"
            )
            return [ParsedEntry("usage", text, "stdout", {"usage": usage, "turnCompleted": True})]
        if kind == "turn.failed":
            message = str((event.get("error") or {}).get("message") or "turn failed")
            failure = classify_failure(message)
            return [ParsedEntry("error", failure, "stdout", {"turnFailed": failure})]
        if kind == "error":
            return [ParsedEntry("error", str(event.get("message") or ""), "stdout", {})]
        return raw(line, stream)

    def result(self, exit_code: int, entries: Sequence[ParsedEntry]) -> AgentOutcome:
        session_id = last_meta(entries, "sessionId")
        failed = last_meta(entries, "turnFailed")
        usage = last_meta(entries, "usage")
        fields = _usage_fields(entries, usage)
        summary = summary_of(entries)
        if failed or exit_code != 0 or usage is None:
            if failed:
                error = _api_error(str(failed), endpoint=last_meta(entries, "endpoint"))
            else:
                stderr = [e.content for e in entries if e.stream == "stderr"]
                detail = f": {stderr[-1]}" if stderr else ""
                error = classify_failure(f"Codex exited with code {exit_code}{detail}")
            return AgentOutcome(
                success=False,
                summary=summary or error,
                error=error,
                session_id=session_id,
                **fields,
            )
        return AgentOutcome(
            success=True,
            summary=summary or "Agent completed successfully",
            session_id=session_id,
            **fields,
        )


def _api_error(failure: str, *, endpoint: str | None) -> str:
    """A failed turn with the provider, the HTTP status and the endpoint it was sent to."""
    found = _STATUS.search(failure)
    status = int(found.group(1)) if found else 500 if _CANNED_500 in failure else None
    if status is None:
        return failure
    detail = failure.removeprefix("Agent authentication failed: ")
    return api_failure(detail, provider=PROVIDER_NAME, status=status, endpoint=endpoint)


def _item(kind: str, item: dict[str, Any]) -> list[ParsedEntry]:
    item_type = item.get("type")
    done = kind == "item.completed"
    meta: dict[str, Any] = {"toolUseId": item.get("id")}
    if item_type == "agent_message" and done:
        return [ParsedEntry("text", str(item.get("text", "")))]
    if item_type == "reasoning" and done:
        return [ParsedEntry("thinking", str(item.get("text", "")))]
    if item_type == "command_execution":
        if kind == "item.started":
            summary = tool_summary("shell", {"command": item.get("command", "")})
            return [ParsedEntry("tool_use", summary, "stdout", {**meta, "toolName": "shell"})]
        if done:
            code = item.get("exit_code")
            output = str(item.get("aggregated_output") or f"exit code {code}")
            meta.update(exitCode=code, isError=code not in (0, None))
            return [ParsedEntry("tool_result", clip(output, MAX_RESULT_CHARS), "stdout", meta)]
    if item_type == "file_change":
        changes = item.get("changes") or []
        if kind == "item.started":
            paths = [f"{_CHANGE_VERBS.get(c.get('kind'), 'Edit')} {c.get('path')}" for c in changes]
            meta["toolName"] = "apply_patch"
            return [ParsedEntry("tool_use", ", ".join(paths) or "apply_patch", "stdout", meta)]
        if done:
            status = str(item.get("status", "completed"))
            meta["isError"] = status != "completed"
            return [ParsedEntry("tool_result", f"Patch {status}", "stdout", meta)]
    if item_type == "mcp_tool_call":
        name = f"{item.get('server')}.{item.get('tool')}"
        if kind == "item.started":
            return [ParsedEntry("tool_use", name, "stdout", {**meta, "toolName": name})]
        if done:
            text = json.dumps(item.get("result") or item.get("error") or {})
            return [ParsedEntry("tool_result", clip(text, MAX_RESULT_CHARS), "stdout", meta)]
    if item_type == "web_search" and kind == "item.started":
        summary = tool_summary("web_search", {"query": item.get("query", "")})
        return [ParsedEntry("tool_use", summary, "stdout", {**meta, "toolName": "web_search"})]
    if item_type == "error":
        return [ParsedEntry("error", str(item.get("message", "")))]
    if item_type == "todo_list" and done:
        steps = [
            f"[{'x' if t.get('completed') else ' '}] {t.get('text')}" for t in item.get("items", [])
        ]
        return [ParsedEntry("system", "Plan:\n" + "\n".join(steps))]
    return []


def _usage_fields(entries: Sequence[ParsedEntry], usage: dict[str, int] | None) -> dict[str, Any]:
    model = last_meta(entries, "model")
    if usage is None:
        return {"model": model}
    base = last_meta(entries, "usageBaseline") or {}
    new = {k: max(0, usage.get(k, 0) - int(base.get(k, 0))) for k in USAGE_KEYS}
    fields: dict[str, Any] = {
        "model": model,
        "input_tokens": new["input_tokens"],
        "output_tokens": new["output_tokens"],
    }
    price = last_meta(entries, "price")
    if price:
        table = Price(Decimal(price[0]), Decimal(price[1]), Decimal(price[2]))
        fields["cost_usd"] = cost(
            table,
            input_tokens=new["input_tokens"],
            cached_input_tokens=new["cached_input_tokens"],
            output_tokens=new["output_tokens"],
        )
    return fields


def _thread_usage(home: Path, thread_id: str) -> dict[str, int] | None:
    """The thread's cumulative usage before this run: its rollout's last token count."""
    sessions = home / "sessions"
    files = sorted(sessions.glob(f"**/rollout-*{thread_id}.jsonl")) if sessions.is_dir() else []
    last: dict[str, Any] | None = None
    for path in files:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if '"token_count"' not in line:
                continue
            event = decode(line) or {}
            info = (event.get("payload") or {}).get("info") or {}
            last = info.get("total_token_usage") or last
    if last is None:
        return None
    return {k: int(last.get(k) or 0) for k in USAGE_KEYS}

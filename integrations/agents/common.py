"""Helpers shared by the adapters of JSON-lines CLIs: line decoding, tool summaries, money."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from integrations.agents.base import ParsedEntry, Stream, strip_ansi

MAX_RESULT_CHARS = 300
MAX_SUMMARY_CHARS = 2000
MAX_COMMAND_CHARS = 120

# Phrases the CLIs and the vendors' APIs use when the key or token is refused, or the
# account is out of quota. Such a run cannot succeed by being retried.
_AUTH = re.compile(
    r"\b401\b|\b403\b|unauthori[sz]ed|authentication|invalid (x-)?api[ -_]?key|"
    r"incorrect api key|api key not valid|invalid_api_key|permission denied|"
    r"oauth token (has )?expired|please run /login|not logged in|login required",
    re.IGNORECASE,
)
_QUOTA = re.compile(
    r"insufficient_quota|exceeded your current quota|credit balance is too low|"
    r"billing|quota exceeded|usage limit",
    re.IGNORECASE,
)


def decode(line: str) -> dict[str, Any] | None:
    """The JSON object on this line, or None for anything else."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def raw(line: str, stream: Stream) -> list[ParsedEntry]:
    """A line that is not the CLI's JSON: kept as text (stderr as is), never dropped silently.

    Malformed or truncated JSON lands here too, so the run log shows exactly what came out.
    """
    text = strip_ansi(line).rstrip("\r\n")
    if len(text.strip()) < 2:
        return []
    return [ParsedEntry("text", text, stream, {"raw": True})]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def tool_summary(name: str, tool_input: dict[str, Any]) -> str:
    """One short line for a tool call, the way the reference's UI shows it."""
    lowered = name.lower()
    path = tool_input.get("file_path") or tool_input.get("path") or tool_input.get("filePath")
    command = tool_input.get("command") or tool_input.get("cmd")
    if isinstance(command, list):
        command = " ".join(str(c) for c in command)
    if lowered in ("read", "read_file", "view") and path:
        return f"Read {path}"
    if lowered in ("write", "write_file", "create") and path:
        return f"Write {path}"
    if lowered in ("edit", "multiedit", "replace", "edit_file", "str_replace") and path:
        return f"Edit {path}"
    if command:
        return f"$ {clip(first_line(str(command)), MAX_COMMAND_CHARS)}"
    if lowered == "glob" and tool_input.get("pattern"):
        return f"Glob {tool_input['pattern']}"
    if lowered in ("grep", "search_file_content") and tool_input.get("pattern"):
        return f'Grep "{tool_input["pattern"]}"'
    if lowered in ("websearch", "web_search", "google_web_search") and tool_input.get("query"):
        return f"Search: {tool_input['query']}"
    if lowered in ("webfetch", "web_fetch") and tool_input.get("url"):
        return f"Fetch: {tool_input['url']}"
    if lowered in ("task", "agent") and tool_input.get("description"):
        return f"Agent: {tool_input['description']}"
    return name


def classify_failure(message: str) -> str:
    """A task error people can act on: auth and quota problems say so first."""
    text = message.strip() or "unknown error"
    if _QUOTA.search(text):
        return f"Agent quota or billing problem: {text}"
    if _AUTH.search(text):
        return f"Agent authentication failed: {text}"
    return text


# The command each agent type runs; installed by `make agents` under .optio-agents/.
AGENT_CLIS = {"claude-code": "claude", "codex": "codex"}


def missing_cli(agent_type: str, *, search_path: Sequence[Path]) -> str | None:
    """Why the agent cannot start, when its CLI is nowhere on the run's PATH."""
    command = AGENT_CLIS.get(agent_type)
    if command is None:
        return None
    path = os.pathsep.join([*map(str, search_path), os.environ.get("PATH", "")])
    if shutil.which(command, path=path) is not None:
        return None
    return (
        f"The {agent_type} CLI ({command}) is not installed: run `make agents` in the "
        "Optio checkout (or set OPTIO_AGENTS_BIN_DIR to where it is installed)"
    )


def api_failure(detail: str, *, provider: str, status: int | None, endpoint: str | None) -> str:
    """An agent's failed model request, for a person: what went wrong, then which provider,
    which HTTP status and which endpoint (a proxy, a gateway and the vendor fail alike)."""
    text = detail.strip() or "the model request failed"
    message = (
        f"Agent authentication failed: {text}" if status in (401, 403) else classify_failure(text)
    )
    where = [provider, *([f"HTTP {status}"] if status else []), *([endpoint] if endpoint else [])]
    return f"{message} ({', '.join(where)})"


def is_permanent(error: str | None) -> bool:
    """Errors that a retry of the same run cannot fix (see classify_failure)."""
    return error is not None and error.startswith(
        ("Agent authentication failed", "Agent quota or billing problem")
    )


def money(value: Decimal | float | int | str) -> str:
    """USD as the reference serialises it: a string with at most 6 decimals."""
    amount = Decimal(str(value)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    return format(amount.normalize(), "f") if amount else "0"


def last_meta(entries: Sequence[ParsedEntry], key: str) -> Any:
    """The most recent value of a metadata key across the run's entries."""
    for entry in reversed(entries):
        if key in entry.metadata:
            return entry.metadata[key]
    return None


def summary_of(entries: Sequence[ParsedEntry]) -> str:
    """The agent's last words (its final message), for the task's result summary."""
    for entry in reversed(entries):
        if entry.log_type == "text" and entry.stream == "stdout" and not entry.metadata.get("raw"):
            return clip(entry.content, MAX_SUMMARY_CHARS)
    return ""

"""Claude Code's streaming input (`--input-format stream-json`): the lines written to its
stdin and the echoes (`--replay-user-messages`) that say it took them.

The prompt goes in as the first user message; a message sent later while the agent works
is added to its next model request of the same run; an interrupt control request stops
the current turn first. The CLI ends once its input ends, so the runner closes stdin
when a turn finishes with every message it wrote echoed back.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

# Agents whose runs take messages while they run.
MID_RUN_AGENTS = frozenset({"claude-code"})
STREAM_INPUT_FLAGS = ("--input-format", "stream-json", "--replay-user-messages")


def takes_input_mid_run(agent_type: str) -> bool:
    return agent_type in MID_RUN_AGENTS


def prompt_as_argument(command: list[str], prompt: str) -> list[str]:
    """The same command with the prompt after `-p` instead of on stdin, for where no one
    can write the agent's stdin (a pod's agent container): no messages mid-run there."""
    out = [a for a in command if a not in STREAM_INPUT_FLAGS]
    at = out.index("-p") + 1
    return [*out[:at], prompt, *out[at:]]


def user_message(text: str) -> bytes:
    message = {"role": "user", "content": [{"type": "text", "text": text}]}
    return (json.dumps({"type": "user", "message": message}) + "\n").encode()


def interrupt_request() -> bytes:
    request = {"type": "control_request", "request_id": uuid.uuid4().hex,
               "request": {"subtype": "interrupt"}}  # fmt: skip
    return (json.dumps(request) + "\n").encode()


def echoed_text(event: dict[str, Any]) -> str | None:
    """The text of a user message the CLI replays (not a tool result), else None."""
    if event.get("type") != "user":
        return None
    content = (event.get("message") or {}).get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return "\n".join(texts) if texts else None


def ends_turn(event: dict[str, Any]) -> bool:
    return event.get("type") == "result"

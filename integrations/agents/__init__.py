"""Registry of agent adapters, keyed by RunSpec.agent_type."""

from __future__ import annotations

from integrations.agents.base import (
    AgentAdapter,
    AgentOutcome,
    ParsedEntry,
    SetupFile,
    UnsupportedAgentError,
    strip_ansi,
)
from integrations.agents.claude_code import ClaudeCodeAdapter
from integrations.agents.codex import CodexAdapter
from integrations.agents.copilot import CopilotAdapter
from integrations.agents.gemini import GeminiAdapter
from integrations.agents.opencode import OpenCodeAdapter
from integrations.agents.script import ScriptAdapter
from integrations.agents.stream_input import takes_input_mid_run

# Accepted by the API (tasks may name them) but not runnable until their adapter lands.
PLANNED_AGENT_TYPES = frozenset({"openclaw"})

# Classes, not instances: each run gets its own adapter (one may keep the run's state,
# e.g. Claude Code's running cost).
_ADAPTERS: dict[str, type[AgentAdapter]] = {
    a.agent_type: a
    for a in (
        ScriptAdapter,
        ClaudeCodeAdapter,
        CodexAdapter,
        GeminiAdapter,
        OpenCodeAdapter,
        CopilotAdapter,
    )
}


def available_agent_types() -> list[str]:
    return sorted(_ADAPTERS)


def get_adapter(agent_type: str) -> AgentAdapter:
    adapter = _ADAPTERS.get(agent_type)
    if adapter is not None:
        return adapter()
    if agent_type in PLANNED_AGENT_TYPES:
        raise UnsupportedAgentError(
            f"Agent type '{agent_type}' is accepted but its adapter is not available yet"
        )
    raise UnsupportedAgentError(f"Unknown agent type '{agent_type}'")


__all__ = [
    "PLANNED_AGENT_TYPES",
    "AgentAdapter",
    "AgentOutcome",
    "ParsedEntry",
    "SetupFile",
    "UnsupportedAgentError",
    "available_agent_types",
    "get_adapter",
    "strip_ansi",
    "takes_input_mid_run",
]

"""Registry of agent adapters, keyed by RunSpec.agent_type."""

from __future__ import annotations

from integrations.agents.base import (
    AgentAdapter,
    AgentOutcome,
    ParsedEntry,
    UnsupportedAgentError,
    strip_ansi,
)
from integrations.agents.script import ScriptAdapter

# Accepted by the API (tasks may name them) but not runnable until their adapter lands.
PLANNED_AGENT_TYPES = frozenset(
    {"claude-code", "codex", "copilot", "opencode", "gemini", "openclaw"}
)

_ADAPTERS: dict[str, AgentAdapter] = {"script": ScriptAdapter()}


def available_agent_types() -> list[str]:
    return sorted(_ADAPTERS)


def get_adapter(agent_type: str) -> AgentAdapter:
    adapter = _ADAPTERS.get(agent_type)
    if adapter is not None:
        return adapter
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
    "UnsupportedAgentError",
    "available_agent_types",
    "get_adapter",
    "strip_ansi",
]

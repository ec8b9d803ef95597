"""`${{NAME}}` references in MCP config, resolved in the sandbox at the last moment.

Values come from the spec (the control plane resolved the names it saw); they are put
into the files the agent reads and masked in everything the runner logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.masking import MASK, MIN_MASKED_LENGTH, Redactor
from schemas.agents import SECRET_REF as REF
from schemas.agents import McpServerSpec

# The Redactor is shared with the control plane, which masks again what it stores.
__all__ = [
    "MASK",
    "MIN_MASKED_LENGTH",
    "MissingSecretError",
    "Redactor",
    "resolve",
    "resolve_servers",
]


class MissingSecretError(Exception):
    pass


def resolve(text: str, secrets: Mapping[str, str], *, where: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in secrets:
            raise MissingSecretError(f"{where} references the unknown secret {name}")
        return secrets[name]

    return REF.sub(value, text)


def resolve_servers(
    servers: list[McpServerSpec], secrets: Mapping[str, str]
) -> list[McpServerSpec]:
    resolved = []
    for server in servers:
        where = f"MCP server '{server.name}'"
        resolved.append(
            server.model_copy(
                update={
                    "command": resolve(server.command, secrets, where=where),
                    "args": [resolve(a, secrets, where=where) for a in server.args],
                    "env": {k: resolve(v, secrets, where=where) for k, v in server.env.items()},
                }
            )
        )
    return resolved


# How each CLI's MCP config file refers to an environment variable. For these the file
# names the variable and the value lives only in the agent's environment (in memory):
# no secret is written to the worktree. Others keep values out of files anyway (Codex
# passes them through its environment, Copilot on its command line).
ENV_REFERENCES = {
    "claude-code": "${{{name}}}",  # .mcp.json: ${VAR} expansion
    "gemini": "${{{name}}}",  # settings.json: $VAR / ${VAR}
    "opencode": "{{env:{name}}}",  # opencode.json: {env:VAR}
}


def servers_for_agent(
    servers: list[McpServerSpec], secrets: Mapping[str, str], *, agent_type: str
) -> tuple[list[McpServerSpec], dict[str, str]]:
    """The servers as the agent's config files should hold them, and the environment the
    agent needs for them: references instead of values where the CLI can expand them."""
    reference = ENV_REFERENCES.get(agent_type)
    resolved = resolve_servers(servers, secrets)  # refuses unknown names, for every agent
    if reference is None:
        return resolved, {}
    used = {name for server in servers for name in _refs(server)}
    references = {name: reference.format(name=name) for name in used}
    return resolve_servers(servers, references), {name: secrets[name] for name in used}


def _refs(server: McpServerSpec) -> set[str]:
    texts = [server.command, *server.args, *server.env.values()]
    return {m.group(1) for t in texts for m in REF.finditer(t)}

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

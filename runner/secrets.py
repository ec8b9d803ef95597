"""`${{NAME}}` references in MCP config, resolved in the sandbox at the last moment.

Values come from the spec (the control plane resolved the names it saw); they are put
into the files the agent reads and masked in everything the runner logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from schemas.agents import SECRET_REF as REF
from schemas.agents import McpServerSpec

MASK = "***"
# Shorter values would mask ordinary words in the log.
MIN_MASKED_LENGTH = 6


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


class Redactor:
    """Replaces secret values in log content and metadata before anything leaves the run."""

    def __init__(self, values: list[str]) -> None:
        self._values = sorted({v for v in values if len(v) >= MIN_MASKED_LENGTH}, key=len)[::-1]

    def text(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def data(self, value: Any) -> Any:
        if not self._values:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        return value

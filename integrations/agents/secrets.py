"""Secret values for `${{NAME}}` references, behind one function so the store can swap in.

Until the secrets table lands, values come from settings (OPTIO_SECRETS, a JSON object).
"""

from __future__ import annotations

from collections.abc import Iterable

from core.settings import Settings
from schemas.agents import SECRET_REF, McpServerSpec


def resolve_secret(name: str, *, settings: Settings) -> str | None:
    value = settings.secrets.get(name)
    return value.get_secret_value() if value is not None else None


def referenced_names(servers: Iterable[McpServerSpec]) -> set[str]:
    names: set[str] = set()
    for server in servers:
        for text in (server.command, *server.args, *server.env.values()):
            names.update(SECRET_REF.findall(text))
    return names

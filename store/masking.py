"""Every secret value a workspace holds, for masking: the layer behind the runner's.

The runner masks what it sends; what the control plane stores (ingested log entries,
run and task errors, summaries, events) is masked again here, so a value that slips
past the runner (or a runner that masks nothing) still never reaches the database.

What is masked: every stored secret of the workspace, whatever its scope (workspace,
repository, each member's own), and every credential Optio itself holds in its settings
(forge tokens, agent keys, the interim `secrets` map). Decrypted values are kept only in
this process's memory, per workspace, and reloaded when the workspace's secrets change:
one indexed query (count and newest update) per use tells.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.masking import Redactor
from core.settings import Settings
from schemas.runner import LogEvent
from store.secrets import Secret, workspace_values

Fingerprint = tuple[int, datetime | None]


def settings_credentials(settings: Settings) -> list[str]:
    """Every credential in the settings: SecretStr fields and the interim `secrets` map."""
    values: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            values.append(value.get_secret_value())
        elif isinstance(value, dict):
            values.extend(v.get_secret_value() for v in value.values() if isinstance(v, SecretStr))
    if settings.encryption_key:
        values.append(settings.encryption_key)
    return [v for v in values if v]


async def _fingerprint(session: AsyncSession, workspace_id: str) -> Fingerprint:
    stmt = select(func.count(Secret.id), func.max(Secret.updated_at)).where(
        Secret.workspace_id == workspace_id
    )
    count, newest = (await session.execute(stmt)).one()
    return int(count), newest


class WorkspaceMasks:
    """Per-workspace redactors, cached in memory and reloaded when the secrets change."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache: dict[str, tuple[Fingerprint, Redactor]] = {}

    async def redactor(
        self, session: AsyncSession, *, workspace_id: str, extra: Iterable[str] = ()
    ) -> Redactor:
        """What masks the workspace's secrets, Optio's credentials and `extra`."""
        fingerprint = await _fingerprint(session, workspace_id)
        cached = self._cache.get(workspace_id)
        if cached is None or cached[0] != fingerprint:
            values = await workspace_values(
                session, workspace_id=workspace_id, settings=self.settings
            )
            cached = (fingerprint, Redactor([*values, *settings_credentials(self.settings)]))
            self._cache[workspace_id] = cached
        extra = [e for e in extra if e]
        return cached[1].with_values(extra) if extra else cached[1]

    @staticmethod
    def events(redact: Redactor, events: list[LogEvent]) -> list[LogEvent]:
        """Log entries with every value masked in their content and metadata."""
        return [
            e.model_copy(
                update={"content": redact.text(e.content), "metadata": redact.data(e.metadata)}
            )
            for e in events
        ]

    def invalidate(self, workspace_id: str) -> None:
        self._cache.pop(workspace_id, None)

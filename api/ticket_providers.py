"""Ticket providers of a workspace: validation, credentials and their Temporal Schedule.

A provider's credentials are split off its config into one encrypted secret; the row
keeps the rest, plus the names of the credentials it has. The schedule is written
before the row is committed (and deleted before the row is), so neither outlives the
other; writing it again is harmless, so a retried request is too.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.service import RPCError

from api.state import AppState
from core.errors import InvalidInputError, ServiceUnavailableError
from integrations.tickets.base import check_host
from schemas.tickets import CONFIG_MODELS, SECRET_FIELDS, ProviderPublic
from store.secrets import secret_key
from store.tickets import TicketProvider, credentials, save_credentials
from temporal.ticket_schedules import put_sync_schedule

CREDENTIAL_NAMES = "credentialFields"
# Fields holding a URL Optio will call with the provider's credentials.
URL_FIELDS = ("apiUrl", "host", "baseUrl")
REQUIRED_CREDENTIAL = {
    "gitlab": "token",
    "jira": "apiToken",
    "linear": "apiKey",
    "notion": "apiKey",
}


def public(row: TicketProvider) -> dict[str, Any]:
    out = ProviderPublic.model_validate(row).model_dump(mode="json", by_alias=True)
    config = dict(row.config)
    out["credentials"] = list(config.pop(CREDENTIAL_NAMES, []))
    out["config"] = config
    out["hasAuthFailure"] = row.auth_failed
    return out


def _bad(field: str, problem: str) -> InvalidInputError:
    return InvalidInputError(
        f"Invalid {field}: {problem}", details=[{"field": field, "message": problem}]
    )


def split_config(
    source: str,
    config: dict[str, Any],
    *,
    allow_private: bool,
    stored: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(the config to store, the credentials to encrypt), checked against the source's model."""
    model = CONFIG_MODELS[source]
    try:
        parsed = model.model_validate(config)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "config." + ".".join(str(p) for p in first["loc"])
        raise InvalidInputError(
            f"Invalid {field}: {first['msg']}",
            details=[
                {"field": "config." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ],
        ) from exc
    values = parsed.model_dump(by_alias=True, exclude_none=True)
    secrets = dict(stored or {})
    for name in SECRET_FIELDS[source]:
        value = values.pop(name, None)
        if isinstance(value, SecretStr):
            if value.get_secret_value():
                secrets[name] = value.get_secret_value()
            else:
                secrets.pop(name, None)  # an empty string removes the stored credential
    required = REQUIRED_CREDENTIAL.get(source)
    if required and not secrets.get(required):
        raise _bad(f"config.{required}", f"a {source} provider needs its {required}")
    for name in URL_FIELDS:
        if name in values:
            try:
                values[name] = check_host(str(values[name]), allow_private=allow_private)
            except ValueError as exc:
                raise _bad(f"config.{name}", str(exc)) from exc
    values[CREDENTIAL_NAMES] = sorted(secrets)
    return values, secrets


def stored_config(row: TicketProvider) -> dict[str, Any]:
    """The row's config as a request would send it (credentials left out)."""
    return {k: v for k, v in row.config.items() if k != CREDENTIAL_NAMES}


async def save(
    state: AppState, session: AsyncSession, row: TicketProvider, secrets: dict[str, str]
) -> None:
    """Credentials, schedule, commit: in that order, all or nothing for the row."""
    await session.flush()
    await save_credentials(session, key=secret_key(state.settings), provider=row, values=secrets)
    await session.flush()
    try:
        await put_sync_schedule(
            await state.temporal_client(),
            row.id,
            interval_seconds=row.sync_interval_seconds
            or state.settings.ticket_sync_interval_seconds,
            enabled=row.enabled,
            task_queue=state.settings.task_queue,
        )
    except RPCError as exc:
        await session.rollback()
        raise ServiceUnavailableError(f"Temporal refused the sync schedule: {exc.message}") from exc
    except ServiceUnavailableError:
        await session.rollback()
        raise
    await session.commit()


async def stored_secrets(
    state: AppState, session: AsyncSession, row: TicketProvider
) -> dict[str, str]:
    return await credentials(session, key=secret_key(state.settings), provider=row)

"""Encrypted secrets: the table and every query over it.

Values are decrypted only in `resolve_secret` (activities, at the last moment) and in
key rotation; listing never touches the ciphertext.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import ForeignKey, Index, LargeBinary, SmallInteger, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.crypto import ALG_AES_256_GCM_V1, associated_data, decrypt, derive_key, encrypt
from core.settings import Settings
from store.models import Base, TimestampMixin, new_id

GLOBAL = "global"
USER = "user"
KEY_FILE = "encryption.key"


class Secret(TimestampMixin, Base):
    __tablename__ = "secrets"
    # user_id is "" outside the user scope: NULLs would make the unique index toothless.
    __table_args__ = (
        Index("uq_secrets_slot", "workspace_id", "name", "scope", "user_id", unique=True),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    # "global", "user", or a repository URL.
    scope: Mapped[str] = mapped_column(String(1000), default=GLOBAL)
    user_id: Mapped[str] = mapped_column(String(36), default="")
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    alg: Mapped[int] = mapped_column(SmallInteger, default=ALG_AES_256_GCM_V1)


@dataclass(frozen=True)
class SecretInfo:
    id: str
    name: str
    scope: str
    user_id: str | None
    created_at: datetime
    updated_at: datetime


def secret_key(settings: Settings) -> bytes:
    """The configured key, or the one `optio` generated into the data dir."""
    value = settings.encryption_key
    key_file = settings.data_dir / KEY_FILE
    if not value and key_file.exists():
        value = key_file.read_text().strip()
    return derive_key(value)


def normalise_scope(scope: str | None) -> str:
    scope = (scope or GLOBAL).strip()
    return scope if scope in (GLOBAL, USER) else scope.rstrip("/")


def _aad(row: Secret) -> bytes:
    return associated_data(
        name=row.name, scope=row.scope, workspace_id=row.workspace_id, user_id=row.user_id
    )


def _seal(row: Secret, key: bytes, value: str) -> None:
    row.nonce, row.ciphertext = encrypt(key, value, aad=_aad(row))
    row.alg = ALG_AES_256_GCM_V1


def _info(row: Secret) -> SecretInfo:
    return SecretInfo(
        id=row.id,
        name=row.name,
        scope=row.scope,
        user_id=row.user_id or None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def list_secrets(
    session: AsyncSession, *, workspace_id: str, user_id: str, scope: str | None = None
) -> list[SecretInfo]:
    """The workspace's secrets plus the caller's own user-scoped ones (never others')."""
    stmt = (
        select(Secret)
        .where(Secret.workspace_id == workspace_id)
        .where((Secret.user_id == "") | (Secret.user_id == user_id))
        .order_by(Secret.name, Secret.scope)
    )
    if scope is not None:
        stmt = stmt.where(Secret.scope == normalise_scope(scope))
    return [_info(row) for row in (await session.execute(stmt)).scalars()]


async def upsert_secret(
    session: AsyncSession,
    *,
    key: bytes,
    workspace_id: str,
    name: str,
    value: str,
    scope: str | None,
    user_id: str,
) -> tuple[SecretInfo, bool]:
    """Create or replace; returns (the secret, whether it was created)."""
    scope = normalise_scope(scope)
    owner = user_id if scope == USER else ""
    row = await _find(session, workspace_id=workspace_id, name=name, scope=scope, user_id=owner)
    created = row is None
    if row is None:
        row = Secret(workspace_id=workspace_id, name=name, scope=scope, user_id=owner)
        session.add(row)
    _seal(row, key, value)
    await session.flush()
    return _info(row), created


async def delete_secret(
    session: AsyncSession, *, workspace_id: str, name: str, scope: str | None, user_id: str
) -> bool:
    scope = normalise_scope(scope)
    owner = user_id if scope == USER else ""
    row = await _find(session, workspace_id=workspace_id, name=name, scope=scope, user_id=owner)
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True


async def resolve_secret(
    session: AsyncSession,
    *,
    workspace_id: str,
    name: str,
    repo_url: str | None = None,
    user_id: str | None = None,
    settings: Settings | None = None,
) -> str | None:
    """The value a run should use: the user's own, else the repo's, else the workspace's.

    Call it inside the activity that needs the value, right before use; never pass the
    result to a workflow, a log line or an exception.
    """
    key = secret_key(settings or Settings())
    slots: list[tuple[str, str]] = []
    if user_id:
        slots.append((USER, user_id))
    if repo_url:
        slots.append((normalise_scope(repo_url), ""))
    slots.append((GLOBAL, ""))
    for scope, owner in slots:
        row = await _find(session, workspace_id=workspace_id, name=name, scope=scope, user_id=owner)
        if row is not None:
            return decrypt(key, row.nonce, row.ciphertext, aad=_aad(row))
    return None


async def workspace_values(
    session: AsyncSession, *, workspace_id: str, settings: Settings
) -> list[str]:
    """The value of every secret in the workspace, all scopes and all users: for masking
    (store.masking) only; never returned, logged or written anywhere."""
    rows = (
        await session.execute(select(Secret).where(Secret.workspace_id == workspace_id))
    ).scalars()
    key = secret_key(settings)
    return [decrypt(key, row.nonce, row.ciphertext, aad=_aad(row)) for row in rows]


async def read_secret(
    session: AsyncSession, *, key: bytes, workspace_id: str, name: str, scope: str
) -> str | None:
    """The value of exactly this slot (no fallback to other scopes): internal scopes such as
    a ticket provider's own credentials. Call it right before use, like `resolve_secret`."""
    row = await _find(
        session, workspace_id=workspace_id, name=name, scope=normalise_scope(scope), user_id=""
    )
    return None if row is None else decrypt(key, row.nonce, row.ciphertext, aad=_aad(row))


async def secret_names(session: AsyncSession, *, names: set[str]) -> set[str]:
    """Which of these names exist in any workspace (setup status reads names, not values)."""
    stmt = select(Secret.name).where(Secret.name.in_(names)).distinct()
    return set((await session.execute(stmt)).scalars())


async def rotate_key(session: AsyncSession, *, old_key: bytes, new_key: bytes) -> int:
    """Re-encrypt every row under the new key, in the caller's transaction (all or nothing)."""
    rows = list((await session.execute(select(Secret).with_for_update())).scalars())
    for row in rows:
        _seal(row, new_key, decrypt(old_key, row.nonce, row.ciphertext, aad=_aad(row)))
    await session.flush()
    return len(rows)


def write_key_file(data_dir: Path, value: str, *, name: str = KEY_FILE) -> None:
    """Write a key file atomically, readable by the owner only."""
    target = data_dir / name
    tmp = target.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    tmp.touch(mode=0o600)
    tmp.write_text(value)
    tmp.replace(target)


async def _find(
    session: AsyncSession, *, workspace_id: str, name: str, scope: str, user_id: str
) -> Secret | None:
    stmt = select(Secret).where(
        Secret.workspace_id == workspace_id,
        Secret.name == name,
        Secret.scope == scope,
        Secret.user_id == user_id,
    )
    return (await session.execute(stmt)).scalar_one_or_none()

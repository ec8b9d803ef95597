"""Resolved credentials, remembered for a few seconds per API process.

Resolving a token is three or four queries in a transaction of its own (the key, the
user, the membership): measured at about a third of the API's CPU on a one-row read
(docs/benchmarks.md#api). A principal found here is reused while all of these hold:

- it is younger than TTL_S and its credential has not expired meanwhile;
- no session of this process has written (or bulk-updated/deleted) a row of the tables
  a principal is made of — keys, sessions, users, workspaces, members — since it was
  resolved: a revocation, a role change or a removal through this process takes effect
  on the very next request. The generation is bumped when such a write is flushed and
  again when it commits, so a request that read the rows in between cannot keep the
  old answer either.

Another process (a second API process, `optio` CLI commands) revoking a credential is
seen within TTL_S. Only valid credentials are kept, a bounded number: unknown tokens
always go to the database, and cannot grow this.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from schemas.auth import Principal
from store.models import ApiKey, AuthSession, User, Workspace, WorkspaceMember
from store.types import utcnow

TTL_S = 5.0
MAX_ENTRIES = 10_000
AUTH_TABLES = frozenset(
    model.__table__ for model in (ApiKey, AuthSession, User, Workspace, WorkspaceMember)
)
_DIRTY = "optio_auth_rows_written"


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    until: float  # time.monotonic()
    expires_at: datetime | None  # the credential's own expiry
    generation: int


class _State:
    generation = 0
    entries: dict[tuple[str, str | None], _Entry] = {}


def lookup(digest: str, requested: str | None) -> Principal | None:
    entry = _State.entries.get((digest, requested))
    if entry is None:
        return None
    if (
        entry.generation != _State.generation
        or time.monotonic() >= entry.until
        or (entry.expires_at is not None and utcnow() >= entry.expires_at)
    ):
        _State.entries.pop((digest, requested), None)
        return None
    return entry.principal.model_copy()


def remember(
    digest: str,
    requested: str | None,
    principal: Principal,
    *,
    expires_at: datetime | None,
    generation: int,
) -> None:
    """`generation` is the one read before the credential was resolved: a write that
    happened meanwhile makes this answer unusable from the start."""
    if len(_State.entries) >= MAX_ENTRIES:
        _State.entries.clear()
    _State.entries[(digest, requested)] = _Entry(
        principal.model_copy(), time.monotonic() + TTL_S, expires_at, generation
    )


def generation() -> int:
    return _State.generation


def forget_all() -> None:
    _State.generation += 1
    _State.entries.clear()


def _touches_auth(tables: Any) -> bool:
    return any(table in AUTH_TABLES for table in tables)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if _touches_auth(getattr(obj, "__table__", None) for obj in changed):
        session.info[_DIRTY] = True
        forget_all()


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if state.is_update or state.is_delete or state.is_insert:
        tables = [getattr(mapper, "local_table", None) for mapper in state.all_mappers]
        target = getattr(state.statement, "table", None)
        if _touches_auth([*tables, target]):
            state.session.info[_DIRTY] = True
            forget_all()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_DIRTY, False):
        forget_all()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_DIRTY, None)

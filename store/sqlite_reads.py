"""SQLite reads run on the event loop's thread; writes and commits keep aiosqlite's.

aiosqlite runs every call of a connection (open a cursor, execute, fetch, close the
cursor, roll back) in a thread of its own and wakes the event loop with the result: five
or six thread round trips for one small query, each a GIL handoff and a loop wakeup.
Measured with the API bench (docs/benchmarks.md#api), those round trips were about half
of the CPU of a one-row read, and the SQLite work itself a small part of it.

A read in WAL mode does not wait for the writer (readers see the last commit), so it
cannot sit in SQLite's busy handler: it is a few hundred microseconds of CPU, cheaper
than the round trips it replaces, and it runs here directly. Everything that may wait
for the write lock or the disk -- INSERT/UPDATE/DELETE, COMMIT, PRAGMAs, opening the
connection -- still goes to the connection's thread, so a slow writer never blocks the
loop. The calls of one connection stay in order: SQLAlchemy awaits each before the
next, whichever thread runs it.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from typing import Any

import aiosqlite

# Calls that only read what a statement already produced.
_ALWAYS_INLINE = frozenset({"cursor", "fetchone", "fetchmany", "fetchall"})


def _is_read(sql: object) -> bool:
    return isinstance(sql, str) and sql.lstrip()[:6].upper() == "SELECT"


def _inline(fn: Any, args: tuple[Any, ...]) -> bool:
    name = getattr(fn, "__name__", "")
    owner = getattr(fn, "__self__", None)
    if name == "execute" and isinstance(owner, sqlite3.Cursor):
        return bool(args) and _is_read(args[0])
    if name == "close":
        return isinstance(owner, sqlite3.Cursor)
    if name in ("rollback", "commit"):
        # The end of a transaction that wrote nothing (Python's sqlite3 begins one at
        # the first write): nothing to undo or make durable, no lock held.
        return isinstance(owner, sqlite3.Connection) and not owner.in_transaction
    return name in _ALWAYS_INLINE and isinstance(owner, sqlite3.Connection | sqlite3.Cursor)


class ReadsInline(aiosqlite.Connection):
    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self._connection is not None and self._running and _inline(fn, args):
            return fn(*args, **kwargs)
        return await super()._execute(fn, *args, **kwargs)


def connect(database: str, **kwargs: Any) -> aiosqlite.Connection:
    """For SQLAlchemy's aiosqlite dialect (`async_creator_fn`); the sqlite3 connection
    is made in aiosqlite's thread and then used from both."""
    kwargs["check_same_thread"] = False
    connection = ReadsInline(partial(sqlite3.connect, database, **kwargs), iter_chunk_size=64)
    connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own
    return connection

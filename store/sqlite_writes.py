"""One SQLite writer at a time per process, served in arrival order.

SQLite has a single write lock per database. A connection that finds it taken sleeps in
SQLite's busy handler in growing steps (1, 2, 5 ... 100 ms) and retries, so with a dozen
pooled connections of one process polling for it, a writer can wait a second for a lock
that is held for 2 ms at a time: measured under the lifecycle bench, write transactions
held the lock 2 ms at p50 and 46 ms at p99 but waited 0.8 s at p99 to get it. Queuing
a process's writers on an asyncio lock first leaves SQLite to arbitrate between processes
only (the API and the worker), one connection each.

Between processes the same polling would starve a process whose writers arrive while
another process has a queue of them, so the queue's head also takes an exclusive `flock`
on a file beside the database: a process blocked on it is woken the moment it is
released, instead of at its next busy-handler retry.

A transaction joins the queue at its first write statement (reads never wait: WAL lets
them run beside the writer) and leaves it when it commits or rolls back, or when its
connection goes back to the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import MissingGreenlet, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

# SQLite's own busy timeout (store/db.py): past it, a writer gives up the same way.
WAIT_SECONDS = 30.0
HOLDING = "optio_write_gate"
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def is_write(statement: str) -> bool:
    return statement.lstrip()[:7].upper().startswith(WRITES)


class WriteGate:
    """A FIFO lock per event loop (a process may run more than one, e.g. in tests), and
    for the holder a file lock shared with the other processes using the database."""

    def __init__(self, lock_file: Path | None) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._lock_file = lock_file
        self._fd: int | None = None
        # Its own thread for a blocking flock: in the shared default executor it could wait
        # behind slow work (git) while every writer of the process queues behind it.
        self._waiter: ThreadPoolExecutor | None = None

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def enter(self, info: dict[str, Any]) -> None:
        lock = self._lock()
        try:
            # Not wait_for: on Python 3.11 it can drop a lock acquired as it times out.
            async with asyncio.timeout(WAIT_SECONDS):
                await lock.acquire()
                try:
                    await self._lock_processes()
                except BaseException:
                    lock.release()
                    raise
        except TimeoutError as exc:
            raise OperationalError(
                "waiting for the SQLite write lock", None, Exception("database is locked")
            ) from exc
        info[HOLDING] = (self, lock)

    @staticmethod
    def leave(info: dict[str, Any]) -> None:
        held: tuple[WriteGate, asyncio.Lock] | None = info.pop(HOLDING, None)
        if held is None:
            return
        gate, lock = held
        if gate._fd is not None:
            fcntl.flock(gate._fd, fcntl.LOCK_UN)
        if lock.locked():
            lock.release()

    async def _lock_processes(self) -> None:
        if self._lock_file is None:
            return
        if self._fd is None:
            self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fd = self._fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if self._waiter is None:
            self._waiter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-flock")
        waiting = asyncio.get_running_loop().run_in_executor(
            self._waiter, fcntl.flock, fd, fcntl.LOCK_EX
        )
        try:
            await asyncio.shield(waiting)
        except BaseException:
            # Given up (cancelled, timed out): the thread may still get the lock later,
            # and must then hand it straight back.
            waiting.add_done_callback(lambda done: _unlock_if_taken(fd, done))
            raise


def _unlock_if_taken(fd: int, done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)


def queue_writers(engine: AsyncEngine) -> None:
    database = engine.url.database
    in_file = bool(database) and database != ":memory:" and not str(database).startswith("file:")
    gate = WriteGate(Path(f"{database}.writers") if in_file else None)
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _before_write(
        conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        if HOLDING in conn.info or not is_write(statement):
            return
        entering = gate.enter(conn.info)
        try:
            await_only(entering)
        except MissingGreenlet:
            entering.close()  # a synchronous caller: SQLite's busy timeout alone applies

    # "commit"/"rollback" fire as the transaction ends (just before SQLite's COMMIT: the
    # next writer's first statement then waits at most a few ms in the busy handler).
    @event.listens_for(sync_engine, "commit")
    def _on_commit(conn: Any) -> None:
        WriteGate.leave(conn.info)

    @event.listens_for(sync_engine, "rollback")
    def _on_rollback(conn: Any) -> None:
        WriteGate.leave(conn.info)

    # Whatever else ends a connection's use (the pool's reset, an invalidated connection)
    # must not leave the gate closed.
    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi: Any, record: Any) -> None:
        WriteGate.leave(record.info)

    @event.listens_for(sync_engine, "invalidate")
    def _on_invalidate(_dbapi: Any, record: Any, _exc: Any) -> None:
        WriteGate.leave(record.info)

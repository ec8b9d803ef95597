"""SQLite writers queue in arrival order in a process and wait on each other across them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import create_engine
from store.sqlite_writes import is_write


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE marks (who TEXT)"))
    try:
        yield engine
    finally:
        await engine.dispose()


def test_only_writes_queue() -> None:
    assert is_write("  insert into marks values (1)")
    assert is_write("UPDATE tasks SET state=?")
    assert is_write("DELETE FROM t")
    assert not is_write("SELECT * FROM marks")
    assert not is_write("PRAGMA journal_mode=WAL")


async def test_writers_take_turns_in_arrival_order(engine: AsyncEngine) -> None:
    order: list[str] = []
    first_holds = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO marks VALUES ('first')"))
            order.append("first wrote")
            first_holds.set()
            await release_first.wait()
            # Reads are not queued behind anybody, even while writers wait.
            await conn.execute(text("SELECT count(*) FROM marks"))
            order.append("first commits")

    async def later(name: str) -> None:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT 1"))  # a read first: no turn taken yet
            await conn.execute(text(f"INSERT INTO marks VALUES ('{name}')"))
            order.append(f"{name} wrote")

    holder = asyncio.create_task(first())
    await first_holds.wait()
    second = asyncio.create_task(later("second"))
    await asyncio.sleep(0.05)
    third = asyncio.create_task(later("third"))
    await asyncio.sleep(0.05)
    # Both wait at the gate, not in SQLite: neither has written.
    assert order == ["first wrote"]
    async with engine.connect() as reader:
        assert (await reader.execute(text("SELECT count(*) FROM marks"))).scalar() == 0
    release_first.set()
    await asyncio.gather(holder, second, third)
    assert order == ["first wrote", "first commits", "second wrote", "third wrote"]


async def test_a_transaction_given_up_lets_the_next_writer_in(engine: AsyncEngine) -> None:
    conn = await engine.connect()
    await conn.begin()
    await conn.execute(text("INSERT INTO marks VALUES ('abandoned')"))
    await conn.close()  # back to the pool without commit: rolled back, turn released
    async with engine.begin() as other:
        await other.execute(text("INSERT INTO marks VALUES ('next')"))
    with pytest.raises(RuntimeError):
        async with engine.begin() as failing:
            await failing.execute(text("INSERT INTO marks VALUES ('rolled back')"))
            raise RuntimeError("boom")
    async with engine.begin() as last:
        await last.execute(text("INSERT INTO marks VALUES ('last')"))
        rows = (await last.execute(text("SELECT who FROM marks"))).scalars().all()
    assert rows == ["next", "last"]


async def test_another_process_holding_the_turn_is_waited_for(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    lock_file = tmp_path / "db.sqlite.writers"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import fcntl, os, sys
                fd = os.open({str(lock_file)!r}, os.O_RDWR | os.O_CREAT)
                fcntl.flock(fd, fcntl.LOCK_EX)
                print("held", flush=True)
                sys.stdin.readline()
                with open({str(tmp_path / "released")!r}, "w") as f:
                    f.write("yes")
                fcntl.flock(fd, fcntl.LOCK_UN)
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        write = asyncio.create_task(_insert(engine, "mine"))
        await asyncio.sleep(0.3)
        assert not write.done()
        holder.stdin.write("go\n")
        holder.stdin.flush()
        await asyncio.wait_for(write, 10)
        # It wrote after the other process let go, not before.
        assert (tmp_path / "released").read_text() == "yes"
    finally:
        holder.kill()
        holder.wait()


async def _insert(engine: AsyncEngine, who: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f"INSERT INTO marks VALUES ('{who}')"))

"""`python -m bench.live`: live streams, measured against `optio api` on SQLite and PostgreSQL.

For each database: a fresh database migrated by `optio api` itself (a subprocess on a
free loopback port), an admin, and a task in `running` with an agent run whose token the
bench uses as its runner. Then:

1. latency: one WebSocket client on /ws/logs/<task>; the runner posts batches every
   50 ms at 1,000 then 5,000 lines/s for `--seconds`; each line carries the time its batch
   was sent, and its latency is its arrival at the client minus that;
2. fan-out: 500 WebSocket clients on /ws/logs/<task> of one API process; VmRSS of the API
   before and with them connected, the API's CPU while the runner posts 20 lines/s to
   all of them for `--seconds`, and whether every client got every line;
3. SSE resume: a client follows /api/tasks/<task>/logs/stream while 2,000 lines arrive
   at 500/s, drops its connection twice, reconnects with Last-Event-ID; lines lost and
   duplicated.

Runs of other users on the machine share its 2 cores: numbers are of that machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.postgres import scratch_database
from bench.stats import fmt, percentile
from bench.system import CpuSnapshot, free_port, status_kib

CLIENTS = 500


@dataclass
class Target:
    api: str
    token: str
    task_id: str
    run_id: str
    run_token: str
    pid: int
    # The run's last seq: the API stores a (run, seq) once, so every phase goes on from it.
    seq: int = 0


@dataclass
class Result:
    db: str
    latency: dict[int, tuple[float, float, float, int]] = field(default_factory=dict)
    fanout: dict[str, str] = field(default_factory=dict)
    sse: dict[str, int] = field(default_factory=dict)


# ---- the system under test -------------------------------------------------------------


@contextlib.contextmanager
def optio_api(database_url: str, workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **os.environ,
        "OPTIO_DATABASE_URL": database_url,
        "OPTIO_DATA_DIR": str(workdir / "data"),
        "OPTIO_API_PORT": str(port),
        # No worker here: Temporal is not needed to stream logs (nothing is started).
        "OPTIO_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "OPTIO_ENCRYPTION_KEY": "0" * 64,
        "OPTIO_LIVE_MAX_CONNECTIONS_PER_IP": str(CLIENTS + 50),
    }
    log = (workdir / f"api-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "api"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"optio api exited: {(workdir / log.name).read_text()[-2000:]}")
            try:
                # Temporal is "unreachable" (503) by design here: the database is what counts.
                health = httpx.get(f"{url}/api/health", timeout=10).json()
                if health["checks"]["database"] == "ok":
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("optio api did not become healthy in 120 s")
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


async def prepare(database_url: str) -> tuple[str, str, str, str]:
    """(admin token, task id, run id, run token), made in the database like the worker."""
    from core.tokens import hash_token
    from store.auth import bootstrap_local_admin
    from store.db import create_engine, session_factory, transaction
    from store.models import AgentRun, Task

    engine = create_engine(database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            admin = await bootstrap_local_admin(session)
            task = Task(workspace_id=admin.workspace_id, title="bench", prompt="p",
                        repo_url="/bench.git", agent_type="script", state="running")  # fmt: skip
            session.add(task)
            await session.flush()
            run_token = uuid.uuid4().hex
            run = AgentRun(
                id=str(uuid.uuid4()), task_id=task.id, workspace_id=admin.workspace_id,
                agent_type="script", sandbox_name="bench", token_hash=hash_token(run_token),
            )  # fmt: skip
            session.add(run)
        assert admin.token is not None
        return admin.token, task.id, run.id, run_token
    finally:
        await engine.dispose()


class Runner:
    """Posts lines the way the runner does: batches, with increasing seq numbers."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.client = httpx.AsyncClient(base_url=target.api, timeout=30)

    @property
    def seq(self) -> int:
        return self.target.seq

    async def post(self, n: int) -> None:
        sent = time.time()
        events = []
        for _ in range(n):
            self.target.seq += 1
            events.append({"seq": self.seq, "timestamp": datetime.now(UTC).isoformat(),
                           "content": f"{self.seq} {sent}"})  # fmt: skip
        response = await self.client.post(
            f"/api/internal/runs/{self.target.run_id}/events",
            json={"events": events},
            headers={"Authorization": f"Bearer {self.target.run_token}"},
        )
        response.raise_for_status()

    async def at_rate(self, rate: int, seconds: float) -> float:
        """Post `rate` lines/s in 50 ms batches; the rate achieved."""
        per_batch = max(1, rate // 20)
        start = time.monotonic()
        first, batches = self.seq, int(seconds * 20)
        for i in range(batches):
            await self.post(per_batch)
            delay = start + (i + 1) * 0.05 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        return (self.seq - first) / (time.monotonic() - start)

    async def close(self) -> None:
        await self.client.aclose()


def ws_connect(target: Target, path: str) -> connect:
    url = target.api.replace("http://", "ws://") + path
    # uvicorn pings every client; 500 clients pinging back only load the bench's own loop.
    protocols = ["optio-ws-v1", f"optio-auth-{target.token}"]
    return connect(url, subprotocols=protocols, ping_interval=None)  # type: ignore[arg-type]


async def read_lines(conn: ClientConnection, until_seq: int, got: dict[int, float]) -> None:
    while True:
        frame = json.loads(await conn.recv())
        if frame["type"] != "task:log":
            continue
        seq, sent = frame["content"].split()
        got[int(seq)] = time.time() - float(sent)
        if int(seq) >= until_seq:
            return


# ---- the measurements ------------------------------------------------------------------


async def latency(target: Target, rate: int, seconds: float) -> tuple[float, float, float, int]:
    runner = Runner(target)
    got: dict[int, float] = {}
    try:
        async with ws_connect(target, f"/ws/logs/{target.task_id}") as conn:
            first = runner.seq
            reader = asyncio.create_task(read_lines(conn, first + 10**9, got))
            await asyncio.sleep(0.5)  # subscribed (the handshake answers before that)
            achieved = await runner.at_rate(rate, seconds)
            last = runner.seq
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    while not all(s in got for s in range(first + 1, last + 1)):
                        await asyncio.sleep(0.05)
            reader.cancel()
    finally:
        await runner.close()
    values = [got[s] * 1000 for s in range(first + 1, last + 1) if s in got]
    lost = (last - first) - len(values)
    return percentile(values, 50), percentile(values, 99), achieved, lost


async def fanout(target: Target, seconds: float) -> dict[str, str]:
    rss_before = status_kib(target.pid, "VmRSS") or 0
    runner = Runner(target)
    async with contextlib.AsyncExitStack() as stack:
        conns = []
        for _ in range(CLIENTS):
            conns.append(
                await stack.enter_async_context(ws_connect(target, f"/ws/logs/{target.task_id}"))
            )
        await asyncio.sleep(1.0)
        rss_connected = status_kib(target.pid, "VmRSS") or 0
        first = runner.seq
        gots: list[dict[int, float]] = [{} for _ in conns]
        readers = [
            asyncio.create_task(read_lines(c, 10**12, g)) for c, g in zip(conns, gots, strict=True)
        ]
        before = CpuSnapshot.take({"api": target.pid})
        await runner.at_rate(20, seconds)
        last = runner.seq
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while not all(last in g for g in gots):
                    await asyncio.sleep(0.1)
        used = CpuSnapshot.take({"api": target.pid}).since(before)
        rss_streaming = status_kib(target.pid, "VmRSS") or 0
        failures = Counter(repr(r.exception())[:160] for r in readers if r.done())
        for r in readers:
            r.cancel()
    await runner.close()
    complete = sum(all(s in g for s in range(first + 1, last + 1)) for g in gots)
    return {
        "rss_before": fmt(rss_before / 1024),
        "rss_connected": fmt(rss_connected / 1024),
        "rss_streaming": fmt(rss_streaming / 1024),
        "growth": fmt((max(rss_connected, rss_streaming) - rss_before) / 1024),
        "cpu": fmt(100 * used["api"] / used["wall"]),
        "frames_s": fmt(CLIENTS * (last - first) / used["wall"], 0),
        "complete": f"{complete}/{CLIENTS}"
        + "".join(f"; {n} failed: {why}" for why, n in failures.items()),
    }


async def sse_resume(target: Target, total: int = 2000, rate: int = 500) -> dict[str, int]:
    runner = Runner(target)
    start_seq = runner.seq
    seen: list[int] = []
    last_id: str | None = None
    drops = 0
    posting: asyncio.Task[float] | None = None
    headers = {"Authorization": f"Bearer {target.token}"}

    def finished() -> bool:
        return posting is not None and posting.done() and bool(seen) and seen[-1] >= runner.seq

    async with httpx.AsyncClient(base_url=target.api, headers=headers, timeout=30) as client:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(120):
                while not finished():
                    extra = {"Last-Event-ID": last_id} if last_id else {}
                    path = f"/api/tasks/{target.task_id}/logs/stream"
                    async with client.stream("GET", path, headers=extra) as response:
                        if posting is None:
                            await asyncio.sleep(0.5)  # subscribed
                            posting = asyncio.create_task(runner.at_rate(rate, total / rate))
                        event_id, data, dropped = None, None, False
                        async for line in response.aiter_lines():
                            if line.startswith("id:"):
                                event_id = line[3:].strip()
                            elif line.startswith("data:"):
                                data = json.loads(line[5:])
                            elif not line and data is not None:
                                if data["type"] == "task:log":
                                    seen.append(int(data["content"].split()[0]))
                                last_id, data = event_id, None
                                new = sum(s > start_seq for s in seen)
                                if drops < 2 and new > (drops + 1) * total // 3:
                                    drops, dropped = drops + 1, True
                                    break
                                if finished():
                                    break
                    if dropped:
                        await asyncio.sleep(0.5)  # away for a moment while lines keep coming
    if posting is not None:
        await posting
    await runner.close()
    wanted = set(range(start_seq + 1, runner.seq + 1))
    got = [s for s in seen if s in wanted]
    return {"posted": len(wanted), "drops": drops, "lost": len(wanted - set(got)),
            "duplicated": len(got) - len(set(got))}  # fmt: skip


async def measure(db: str, database_url: str, workdir: Path, seconds: float) -> Result:
    result = Result(db=db)
    with optio_api(database_url, workdir) as (api, proc):
        token, task_id, run_id, run_token = await prepare(
            database_url.replace("postgresql://", "postgresql+psycopg://", 1)
            if db == "postgres"
            else database_url
        )
        target = Target(api, token, task_id, run_id, run_token, proc.pid)
        for rate in (1000, 5000):
            print(f"[{db}] latency at {rate} lines/s ...", file=sys.stderr)
            result.latency[rate] = await latency(target, rate, seconds)
        print(f"[{db}] {CLIENTS} clients ...", file=sys.stderr)
        result.fanout = await fanout(target, seconds)
        print(f"[{db}] SSE resume ...", file=sys.stderr)
        result.sse = await sse_resume(target)
    problems = [
        line
        for path in workdir.glob("api-*.log")
        for line in path.read_text(errors="replace").splitlines()
        if "WARNING" in line or "ERROR" in line or "Traceback" in line
    ]
    for line in problems[:20]:
        print(f"[{db}] api: {line}", file=sys.stderr)
    return result


def table(results: list[Result]) -> str:
    rows = [
        "| database | measure | result |",
        "|---|---|---|",
    ]
    for r in results:
        for rate, (p50, p99, achieved, lost) in r.latency.items():
            rows.append(
                f"| {r.db} | runner -> WebSocket at {rate} lines/s (achieved {achieved:.0f}) "
                f"| p50 {fmt(p50)} ms, p99 {fmt(p99)} ms, lost {lost} |"
            )
        f = r.fanout
        rows.append(
            f"| {r.db} | {CLIENTS} WebSocket clients, one API process "
            f"| RSS {f['rss_before']} -> {f['rss_connected']} MiB connected, "
            f"{f['rss_streaming']} MiB streaming (growth {f['growth']} MiB); API CPU "
            f"{f['cpu']}% at {f['frames_s']} frames/s; complete {f['complete']} |"
        )
        s = r.sse
        rows.append(
            f"| {r.db} | SSE resume (Last-Event-ID) after {s['drops']} drops "
            f"| {s['posted']} lines, lost {s['lost']}, duplicated {s['duplicated']} |"
        )
    return "\n".join(rows)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="optio-bench-live-") as tmp:
        if args.db in ("sqlite", "both"):
            workdir = Path(tmp) / "sqlite"
            workdir.mkdir()
            url = f"sqlite+aiosqlite:///{workdir / 'optio.db'}"
            results.append(await measure("sqlite", url, workdir, args.seconds))
        if args.db in ("postgres", "both"):
            workdir = Path(tmp) / "postgres"
            workdir.mkdir()
            with scratch_database() as url:
                results.append(await measure("postgres", url, workdir, args.seconds))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

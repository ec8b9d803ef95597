"""`python -m bench.webhooks`: outgoing webhook fan-out, 1,000 events to 3 receivers.

Each event goes to three webhooks, each served by its own receiver on loopback
(tests/notify/receiver.py). One receiver is down (its port closed) for the first
`--down-seconds` (60 by default), then comes back. Deliveries are the real thing:
`plan_event` plans them from the webhook rows of a real SQLite database, one
DeliveryWorkflow each runs on a real Temporal dev server, and the worker's
`deliver_notification` activity posts, signs and records every attempt, retried with
backoff (1 s doubling to 10 s here, so a minute's outage is bridged by about ten tries).

Latency is from the moment an event is emitted to the moment its receiver first has
it. Lost is an event a receiver never got; a duplicate, one it got twice (delivery is
at least once; the X-Optio-Delivery header tells receivers which). Emitter, worker and
receivers share one process, so the latency includes the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.notify import DeliveryActivities
from bench.stats import percentile
from core.settings import SEARCH_ATTRIBUTES, Settings
from store.auth import bootstrap_local_admin
from store.db import create_engine, session_factory, transaction
from store.migrate import upgrade
from store.notify import plan_event
from store.webhooks import Webhook, WebhookDelivery
from temporal.deliveries import start_deliveries
from tests.notify.receiver import Receiver
from workflows.delivery import DeliveryWorkflow

EVENT = "task.completed"
EMITTERS = 20  # events in flight while emitting


@dataclass
class Row:
    receiver: str
    events: int
    delivered: int
    duplicates: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class Report:
    rows: list[Row]
    emit_seconds: float
    total_seconds: float
    attempts: int
    down_seconds: float


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--down-seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=600.0, help="for every delivery")
    return parser.parse_args(argv)


async def run(events: int, down_seconds: float, timeout: float) -> Report:
    tmp = Path(tempfile.mkdtemp(prefix="optio-bench-webhooks-"))
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        ip="127.0.0.1",
        search_attributes=[SearchAttributeKey.for_keyword(n) for n in SEARCH_ATTRIBUTES],
        dev_server_extra_args=["--log-level", "error"],
    )
    settings = Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite+aiosqlite:///{tmp / 'optio.db'}",
        encryption_key="0" * 64,
        task_queue="bench-webhooks",
        webhook_private_allowlist=["127.0.0.1"],
        webhook_retry_initial_seconds=1.0,
        webhook_retry_max_interval_seconds=10.0,
        webhook_max_attempts=30,
        webhook_timeout_seconds=10.0,
    )
    upgrade(settings.database_url_resolved)
    engine = create_engine(settings.database_url_resolved)
    sessions = session_factory(engine)
    receivers = {name: Receiver() for name in ("up-1", "up-2", "down-then-up")}
    hooks: dict[str, str] = {}
    async with transaction(sessions) as session:
        admin = await bootstrap_local_admin(session)
        workspace_id = admin.workspace_id
        for name, receiver in receivers.items():
            hook = Webhook(workspace_id=workspace_id, url=receiver.url, events=[EVENT])
            session.add(hook)
            await session.flush()
            hooks[hook.id] = name
    for name, receiver in receivers.items():
        if name != "down-then-up":
            await receiver.start()
    worker = Worker(
        env.client,
        task_queue=settings.task_queue,
        workflows=[DeliveryWorkflow],
        activities=[DeliveryActivities(settings=settings, sessions=sessions).deliver],
    )
    emitted: dict[str, float] = {}
    try:
        async with worker:
            started = time.monotonic()
            revive = asyncio.create_task(_revive(receivers["down-then-up"], down_seconds))
            await _emit(env, settings, sessions, workspace_id, events, emitted)
            emit_seconds = time.monotonic() - started
            await revive
            await _all_delivered(receivers.values(), events, timeout)
            total_seconds = time.monotonic() - started
        async with sessions() as session:
            attempts = await session.scalar(select(func.count()).select_from(WebhookDelivery))
    finally:
        for receiver in receivers.values():
            await receiver.stop()
        await engine.dispose()
        await env.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [_row(name, receiver, emitted, events) for name, receiver in receivers.items()]
    return Report(rows, emit_seconds, total_seconds, int(attempts or 0), down_seconds)


async def _revive(receiver: Receiver, after: float) -> None:
    await asyncio.sleep(after)
    await receiver.start()


async def _emit(
    env: WorkflowEnvironment,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    workspace_id: str,
    events: int,
    emitted: dict[str, float],
) -> None:
    """Plan and start each event's deliveries as a recording activity would, 20 at a time."""
    gate = asyncio.Semaphore(EMITTERS)

    async def one(n: int) -> None:
        key = f"bench:{n}"
        async with gate:
            async with sessions() as session:
                plans = await plan_event(
                    session,
                    settings,
                    workspace_id=workspace_id,
                    event=EVENT,
                    key=key,
                    timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    data={"taskId": key, "n": n},
                    repo_url=None,
                )
            emitted[key] = time.monotonic()
            await start_deliveries(env.client, task_queue=settings.task_queue, deliveries=plans)

    await asyncio.gather(*(one(n) for n in range(events)))


async def _all_delivered(receivers: Iterable[Receiver], events: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        got = [len(_first_arrivals(r)) for r in receivers]
        if all(n >= events for n in got):
            return
        if time.monotonic() > deadline:
            return  # the table shows what was lost
        await asyncio.sleep(0.2)


def _first_arrivals(receiver: Receiver) -> dict[str, float]:
    """When each delivery first reached the receiver, by X-Optio-Delivery."""
    first: dict[str, float] = {}
    for request in receiver.requests:
        delivery = request.headers.get("x-optio-delivery", "")
        first.setdefault(delivery, request.at)
    return first


def _row(name: str, receiver: Receiver, emitted: dict[str, float], events: int) -> Row:
    first = _first_arrivals(receiver)
    counts = Counter(r.headers.get("x-optio-delivery", "") for r in receiver.requests)
    latencies = sorted(
        (at - emitted[delivery.split(":", 1)[1]]) * 1000 for delivery, at in first.items()
    )
    return Row(
        receiver=name,
        events=events,
        delivered=len(first),
        duplicates=sum(n - 1 for n in counts.values()),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else 0.0,
    )


def table(report: Report) -> str:
    lines = [
        "| receiver | events | delivered | lost | duplicates | p50 (ms) | p99 (ms) | max (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.rows:
        lines.append(
            f"| {r.receiver} | {r.events} | {r.delivered} | {r.events - r.delivered} "
            f"| {r.duplicates} | {r.p50_ms:.0f} | {r.p99_ms:.0f} | {r.max_ms:.0f} |"
        )
    lines.append("")
    lines.append(
        f"{len(report.rows) * report.rows[0].events} deliveries emitted in "
        f"{report.emit_seconds:.1f} s; all done after {report.total_seconds:.1f} s; "
        f"{report.attempts} attempts recorded; `down-then-up` was down for "
        f"{report.down_seconds:.0f} s."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report = asyncio.run(run(args.events, args.down_seconds, args.timeout))
    sys.stdout.write(table(report) + "\n")


if __name__ == "__main__":
    main()

"""`python -m bench.tickets`: ticket sync of 1,000 tickets across Jira, Linear and Notion.

Each provider is served by its test double over loopback HTTP (tests/tickets/); the sync
is the real activity (`sync_ticket_provider`) writing tasks and links into a real SQLite
database and starting each task's workflow on a real Temporal dev server (on a task queue
no worker polls, so the agents do not run: the bench measures the sync, not the tasks).
Every ticket has two comments. A second run of each provider shows what a sync costs
once every ticket is linked. See docs/tickets.md for the table of this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.common import SearchAttributeKey
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.tickets import TicketActivities
from core.settings import SEARCH_ATTRIBUTES, Settings
from schemas.tickets import TicketSyncInput, TicketSyncResult
from store.auth import bootstrap_local_admin
from store.db import create_engine, session_factory, transaction
from store.migrate import upgrade
from store.models import Repo
from store.secrets import secret_key
from store.tickets import TicketProvider, save_credentials
from tests.conftest import free_port
from tests.forges.conftest import serve
from tests.tickets.conftest import JIRA_EMAIL, JIRA_TOKEN, LINEAR_KEY, NOTION_DB, NOTION_TOKEN
from tests.tickets.jira_double import JiraDouble
from tests.tickets.linear_double import LinearDouble
from tests.tickets.notion_double import NotionDouble

REPO_URL = "https://github.com/acme/app"


@dataclass
class Row:
    source: str
    tickets: int
    created: int
    requests: int
    seconds: float
    again_requests: int
    again_seconds: float


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.tickets", description=__doc__)
    parser.add_argument("--tickets", type=int, default=1000, help="across the 3 providers")
    return parser.parse_args(argv)


async def _doubles(total: int) -> tuple[list[Any], list[Any]]:
    share = [total - 2 * (total // 3), total // 3, total // 3]
    jira = JiraDouble(users={JIRA_EMAIL: JIRA_TOKEN})
    linear = LinearDouble(keys={LINEAR_KEY})
    notion = NotionDouble(tokens={NOTION_TOKEN}, database_id=NOTION_DB)
    for n in range(share[0]):
        jira.add_issue("OPS", f"Jira {n}", description="true", labels=["optio"],
                       comments=["first", "second"])  # fmt: skip
    for n in range(share[1]):
        linear.add_issue(f"Linear {n}", description="true", labels=["optio"],
                         comments=["first", "second"])  # fmt: skip
    for n in range(share[2]):
        notion.add_page(f"Notion {n}", body="true", tags=["optio"], comments=["first", "second"])
    servers = []
    for double in (jira, linear, notion):
        port = free_port()
        double.base_url = f"http://127.0.0.1:{port}"
        servers.append(await serve(double.app, port))
    return [jira, linear, notion], servers


async def run(total: int) -> list[Row]:
    tmp = Path(tempfile.mkdtemp(prefix="optio-bench-tickets-"))
    bin_dir = Path(sys.executable).parent
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(bin_dir / "temporal"),
        ip="127.0.0.1",
        search_attributes=[SearchAttributeKey.for_keyword(n) for n in SEARCH_ATTRIBUTES],
        dev_server_extra_args=["--log-level", "error"],
    )
    (jira, linear, notion), servers = await _doubles(total)
    settings = Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite+aiosqlite:///{tmp / 'optio.db'}",
        encryption_key="0" * 64,
        task_queue="bench-tickets-unpolled",
        ticket_allow_private_hosts=True,
        linear_api_url=f"{linear.base_url}/graphql",
        notion_api_url=notion.base_url,
    )
    upgrade(settings.database_url_resolved)
    engine = create_engine(settings.database_url_resolved)
    sessions = session_factory(engine)
    configs = [
        ("jira", {"baseUrl": jira.base_url, "email": JIRA_EMAIL, "projectKey": "OPS"},
         {"apiToken": JIRA_TOKEN}),
        ("linear", {"teamId": "team-eng"}, {"apiKey": LINEAR_KEY}),
        ("notion", {"databaseId": NOTION_DB}, {"apiKey": NOTION_TOKEN}),
    ]  # fmt: skip
    providers: list[tuple[str, str]] = []
    async with transaction(sessions) as session:
        admin = await bootstrap_local_admin(session)
        session.add(Repo(workspace_id=admin.workspace_id, repo_url=REPO_URL, full_name="acme/app"))
        for source, config, secrets in configs:
            row = TicketProvider(
                workspace_id=admin.workspace_id,
                source=source,
                config={**config, "repoUrl": REPO_URL},
                enabled=True,
                consecutive_failures=0,
                auth_failed=False,
            )
            session.add(row)
            await session.flush()
            await save_credentials(session, key=secret_key(settings), provider=row, values=secrets)
            providers.append((source, row.id))
    activities = TicketActivities(settings=settings, sessions=sessions)
    activity_env = ActivityEnvironment(client=env.client)
    doubles = {"jira": jira, "linear": linear, "notion": notion}
    rows: list[Row] = []
    try:
        for source, provider_id in providers:
            double = doubles[source]
            timings: list[tuple[TicketSyncResult, int, float]] = []
            for _ in range(2):
                before = double.requests
                started = time.perf_counter()
                result: TicketSyncResult = await activity_env.run(
                    activities.sync_ticket_provider, TicketSyncInput(provider_id=provider_id)
                )
                timings.append((result, double.requests - before, time.perf_counter() - started))
                if result.error:
                    raise SystemExit(f"{source}: {result.error}")
            (first, first_requests, first_s), (_, again_requests, again_s) = timings
            rows.append(
                Row(
                    source,
                    first.fetched,
                    len(first.created),
                    first_requests,
                    first_s,
                    again_requests,
                    again_s,
                )  # fmt: skip
            )
    finally:
        for server, task in servers:
            server.should_exit = True
            await task
        await engine.dispose()
        await env.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| provider | tickets | tasks created | requests | time (s) | tickets/s "
        "| 2nd run requests | 2nd run time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.source} | {r.tickets} | {r.created} | {r.requests} | {r.seconds:.2f} "
            f"| {r.tickets / r.seconds:.0f} | {r.again_requests} | {r.again_seconds:.2f} |"
        )
    total_t = sum(r.tickets for r in rows)
    total_s = sum(r.seconds for r in rows)
    lines.append(
        f"| **all** | {total_t} | {sum(r.created for r in rows)} "
        f"| {sum(r.requests for r in rows)} | {total_s:.2f} | {total_t / total_s:.0f} "
        f"| {sum(r.again_requests for r in rows)} | {sum(r.again_seconds for r in rows):.2f} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = asyncio.run(run(args.tickets))
    sys.stdout.write(table(rows) + "\n")


if __name__ == "__main__":
    main()

"""A viewer sees no write controls (and the API refuses them anyway); 10,000 tasks load fast."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from store.db import create_engine, session_factory, transaction
from store.models import Task, TaskLog
from tests.conftest import Optio
from tests.identity.conftest import add_person
from tests.lifecycle_helpers import create_task

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("sqlite")

MakeRepo = Callable[..., Path]
BASE = datetime(2026, 12, 1, tzinfo=UTC)
STATES = ["queued", "running", "needs_attention", "pr_opened", "completed", "failed"]


async def test_a_viewer_sees_no_write_controls_and_the_api_refuses_them(
    api_only: Optio, make_repo: MakeRepo, open_dashboard: Any
) -> None:
    task = await create_task(api_only.client, make_repo(), "true", title="Someone's task")
    _, token, _ = await add_person(api_only, "Vera", member_of=api_only.workspace_id, role="viewer")
    board = await open_dashboard(str(api_only.client.base_url))
    page = board.page
    await board.sign_in(token)
    await page.locator("#who-role", has_text="viewer").wait_for()
    await board.go("#/tasks")
    await page.get_by_text("Someone's task").wait_for()
    for name in ("New task", "Cancel all active", "Retry all failed", "Move Someone's task up"):
        assert await page.get_by_role("button", name=name).count() == 0, name
        assert await page.get_by_role("link", name=name).count() == 0, name
    await board.go(f"#/tasks/{task['id']}")
    await page.get_by_role("heading", level=1, name="Someone's task").wait_for()
    assert await page.get_by_role("group", name="Task actions").get_by_role("button").count() == 0
    assert await page.get_by_label("Add a comment").count() == 0
    for hash_path, heading, control in (
        ("#/secrets", "Secrets", "Save secret"),
        ("#/repos", "Repos", "Connect"),
        ("#/blueprints", "Blueprints", "Create blueprint"),
        ("#/templates", "Templates", "Save template"),
    ):
        await board.go(hash_path)
        await page.get_by_role("heading", level=1, name=heading).wait_for()
        await page.wait_for_load_state("networkidle")
        assert await page.get_by_role("button", name=control).count() == 0, hash_path
    await board.shot("viewer-templates")

    # The same browser, the same credential, straight at the API: refused.
    auth = {"Authorization": f"Bearer {token}"}
    writes = [
        ("post", "/api/tasks", {"title": "x", "prompt": "x", "repoUrl": "/tmp"}),
        ("post", f"/api/tasks/{task['id']}/cancel", {}),
        ("post", "/api/tasks/reorder", {"taskIds": [task["id"]]}),
        ("post", "/api/secrets", {"name": "X", "value": "y"}),
    ]
    for method, path, body in writes:
        response = await getattr(page.request, method)(board.base + path, data=body, headers=auth)
        assert response.status == 403, (path, response.status)
    board.finish()


async def test_first_view_of_ten_thousand_tasks_is_under_a_second(
    api_only: Optio, open_dashboard: Any
) -> None:
    engine = create_engine(api_only.settings.database_url_resolved)
    rows = [
        {
            "workspace_id": api_only.workspace_id,
            "title": f"Task {n}",
            "prompt": "p",
            "repo_url": "https://github.com/acme/app",
            "agent_type": "script",
            "state": STATES[n % len(STATES)],
        }
        for n in range(10_000)
    ]
    async with transaction(session_factory(engine)) as session:
        await session.execute(insert(Task), rows)
    await engine.dispose()

    board = await open_dashboard(str(api_only.client.base_url))
    page = board.page
    await board.sign_in(api_only.token)
    await board.go("#/secrets")
    await page.get_by_role("heading", level=1, name="Secrets").wait_for()
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/api/tasks" in r.url else None)
    timings = []
    for _ in range(3):
        await board.go("#/secrets")
        await page.get_by_role("heading", level=1, name="Secrets").wait_for()
        started = time.perf_counter()
        await board.go("#/tasks")
        await page.locator('[data-column="completed"] .card').first.wait_for()
        await page.get_by_text("150 task(s) loaded").wait_for()  # 25 a state, six states
        timings.append(time.perf_counter() - started)
    # Paged: one request of at most 25 tasks per state, never the whole workspace.
    per_view = [u for u in fetched if "state=" in u]
    assert len(per_view) == 3 * 10 and all("limit=25" in u for u in per_view), per_view
    # A full page load too: the shell, the modules, the sign-in check and the board.
    started = time.perf_counter()
    await page.reload()
    await page.locator('[data-column="completed"] .card').first.wait_for()
    cold = time.perf_counter() - started
    print(f"board of 10,000 tasks: in-app {[round(t, 3) for t in timings]} s, reload {cold:.3f} s")
    await board.shot("board-10k")
    # Wall time: the median of the in-app views, and the reload. On a machine busier
    # than its cores (load average above the CPU count) wall time measures the queue
    # for a core, not the dashboard: there the numbers are printed, not asserted.
    if os.getloadavg()[0] <= (os.cpu_count() or 1):
        assert sorted(timings)[1] < 1.0 and cold < 1.0, (timings, cold)
    board.finish()


async def test_a_log_of_100000_lines_loads_searches_and_scrolls(
    api_only: Optio, open_dashboard: Any
) -> None:
    engine = create_engine(api_only.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        task_id = (
            await session.execute(
                insert(Task).returning(Task.id),
                [
                    {
                        "workspace_id": api_only.workspace_id,
                        "title": "Chatty",
                        "prompt": "p",
                        "repo_url": "https://github.com/acme/app",
                        "agent_type": "script",
                        "state": "completed",
                    }
                ],
            )
        ).scalar_one()
        kinds = ["text", "tool_use", "error"]
        await session.execute(
            insert(TaskLog),
            [
                {
                    "task_id": task_id,
                    "workspace_id": api_only.workspace_id,
                    "content": f"line {n}",
                    "log_type": kinds[n % 3],
                    "timestamp": BASE + timedelta(milliseconds=n),
                }
                for n in range(100_000)
            ],
        )
    await engine.dispose()

    board = await open_dashboard(str(api_only.client.base_url))
    page = board.page
    await board.sign_in(api_only.token)
    started = time.perf_counter()
    await board.go(f"#/tasks/{task_id}")
    await page.locator("#log-status", has_text="100000 lines").wait_for(timeout=120_000)
    loaded = time.perf_counter() - started
    # Scroll from the end to the top in 40 steps, one a frame; the slowest frame says
    # whether it stutters.
    slowest = await page.evaluate(
        """async () => {
          const view = document.getElementById('log-view');
          const step = view.scrollHeight / 40;
          let last = performance.now(), worst = 0;
          for (let i = 0; i < 40; i++) {
            view.scrollTop = view.scrollHeight - (i + 1) * step;
            await new Promise(requestAnimationFrame);
            const now = performance.now();
            worst = Math.max(worst, now - last);
            last = now;
          }
          return worst;
        }"""
    )
    assert await page.locator("#log-view").get_by_text("line 0", exact=True).is_visible()
    await page.get_by_label("Search logs").fill("line 9999")
    await page.locator("#log-status", has_text="11 of 100000 lines match").wait_for()
    assert await page.locator("#log-view .log-error").count() > 0  # kinds styled apart
    print(f"100,000 log lines: loaded in {loaded:.2f} s, slowest scroll frame {slowest:.0f} ms")
    if os.getloadavg()[0] <= (os.cpu_count() or 1):
        assert slowest < 100, slowest
    board.finish()

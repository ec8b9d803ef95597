"""A viewer sees no write controls (and the API refuses them anyway); 10,000 tasks load fast."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from store.db import create_engine, session_factory, transaction
from store.models import Task
from tests.conftest import Optio
from tests.identity.conftest import add_person
from tests.lifecycle_helpers import create_task

MakeRepo = Callable[..., Path]
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
